// What a typical benchmark program touches (collections, streams and lambdas, formatting, big numbers,
// javatuples, MessageDigest), run once under the harness so that the classes the JDK loads for it are kept
// in a class-data sharing archive every later run maps instead of loading them again.
import java.math.BigInteger;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.javatuples.Pair;

class CqTraining {
    public static void main(String[] args) throws Exception {
        List<Long> numbers = new ArrayList<>(Arrays.asList(3L, 1L, 2L));
        Collections.sort(numbers);
        numbers.sort((a, b) -> Long.compare(b, a));
        long sum = numbers.stream().mapToLong(Long::longValue).filter(x -> x > 1).sum();
        List<String> words = Stream.of("b", "a").map(String::toUpperCase).sorted().collect(Collectors.toList());
        Map<String, Integer> counts = new HashMap<>();
        counts.merge("a", 1, Integer::sum);
        String text = String.format("%d %s %.2f", sum, words, 1.5);
        BigInteger big = BigInteger.valueOf(7).pow(20);
        byte[] digest = MessageDigest.getInstance("MD5").digest(text.getBytes());
        Optional<Pair<Long, Integer>> pair = Optional.of(Pair.with(sum, counts.get("a"))).filter(p -> p.getValue0() > 0);
        assert pair.isPresent() && big.signum() > 0 && digest.length == 16 && text.length() > 0;
    }
}
