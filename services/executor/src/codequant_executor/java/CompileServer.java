// codequant's Java compile server: one warm JVM compiles each program in isolation through
// javax.tools, instead of paying ~1 s of javac start-up per program.
//
// Protocol (one request per line on stdin, one response per line on stdout):
//   request:  <source file path>\t<output directory>\t<classpath>
//   response: OK\t<base64 diagnostics>   or   ERROR\t<base64 diagnostics>
// Annotation processing is off (-proc:none), so compiling untrusted source runs none of its code.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;

public final class CompileServer {
    public static void main(String[] args) throws Exception {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        // One file manager for all requests keeps the platform classes and jars cached between compilations.
        StandardJavaFileManager files = compiler.getStandardFileManager(null, Locale.ROOT, StandardCharsets.UTF_8);
        out.println("READY");
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", -1);
            if (parts.length != 3) {
                out.println("ERROR\t" + encode("bad request"));
                continue;
            }
            DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
            StringWriter log = new StringWriter();
            boolean ok;
            try {
                Iterable<? extends JavaFileObject> units = files.getJavaFileObjects(parts[0]);
                List<String> options = List.of(
                    "-encoding", "UTF8", "-proc:none", "-implicit:none", "-nowarn", "-g:none",
                    "-d", parts[1], "-cp", parts[2]);
                ok = compiler.getTask(log, files, diagnostics, options, null, units).call();
            } catch (RuntimeException | Error e) {
                ok = false;
                log.write("compiler crashed: " + e);
            }
            StringBuilder text = new StringBuilder(log.toString());
            for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
                if (d.getKind() == Diagnostic.Kind.ERROR) {
                    String source = d.getSource() == null ? "" : d.getSource().getName();
                    text.append(source).append(':').append(d.getLineNumber()).append(": error: ")
                        .append(d.getMessage(Locale.ROOT)).append('\n');
                }
            }
            out.println((ok ? "OK\t" : "ERROR\t") + encode(text.toString()));
        }
    }

    private static String encode(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }
}
