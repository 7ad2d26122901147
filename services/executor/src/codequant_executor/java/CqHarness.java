// Runs a program's main class, then prints the run's secret marker: only a program whose main
// returned normally prints it, so System.exit(0) or Runtime.halt(0) before the tests does not pass.
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

public final class CqHarness {
    public static void main(String[] args) throws Throwable {
        Method main = Class.forName(args[0]).getDeclaredMethod("main", String[].class);
        main.setAccessible(true);
        try {
            main.invoke(null, (Object) new String[0]);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        System.out.flush();
        System.out.println(args[1]);
        System.out.flush();
    }
}
