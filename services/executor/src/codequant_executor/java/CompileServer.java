// codequant's Java compile server: one warm JVM compiles each program in isolation through
// javax.tools, instead of paying ~1 s of javac start-up per program. It runs inside the sandbox
// (own uid, no network, rlimits); the executor kills and restarts it when a compilation exceeds
// the program's timeout, and runs several of them so that one slow compilation blocks no other.
//
// Protocol (one request per line on stdin, one response per line on stdout):
//   request:  <source file path>\t<output directory>\t<classpath>
//   response: OK\t<base64 diagnostics>\t<base64 mains>   or   ERROR\t<base64 diagnostics>\t
// where mains lists each top-level class declaring `static void main(String[])` as
// "<class name>\t<offset of the method in the source, in UTF-16 units>" lines, in source order.
// The source file's name does not matter (the public class need not match it), and annotation
// processing is off (-proc:none), so compiling untrusted source runs none of its code.
// Compilations with the same class path reuse one javac context (JavacTaskPool, as jshell does): the
// platform's and javatuples' symbols are read once, not once per program (~40 -> ~22 ms of CPU per
// program). After each compilation the pool drops every class entered from the program's source, and it
// discards a context whose compilation threw or declared a java.* class. A program that declares a package
// of its own starts a new pool after it: the package's symbols would keep what it declared there (a
// shadowed javatuples class stayed unknown to the next program).
import com.sun.source.tree.ClassTree;
import com.sun.source.tree.CompilationUnitTree;
import com.sun.source.tree.MethodTree;
import com.sun.source.tree.Tree;
import com.sun.source.util.SourcePositions;
import com.sun.source.util.TaskEvent;
import com.sun.source.util.TaskListener;
import com.sun.source.util.Trees;
import com.sun.tools.javac.api.JavacTaskPool;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.StringWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import javax.lang.model.element.Modifier;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.FileObject;
import javax.tools.ForwardingJavaFileManager;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.StandardLocation;
import javax.tools.ToolProvider;

public final class CompileServer {
    private static final int MAX_DIAGNOSTICS = 64_000;
    /** Reusable javac contexts, keyed by the options (the same for every program of one runner). */
    private static JavacTaskPool contexts = new JavacTaskPool(1);
    private static final String WARM_UP =
        "import java.util.*;\nclass Warm { public static void main(String[] a) { List<Long> x = new ArrayList<>();"
        + " x.add(1l); assert x.size() == 1; System.out.println(String.format(\"%d\", x.get(0))); } }\n";

    /** A source held in memory whose name is compatible with any class, so no file naming rule applies. */
    private static final class Source extends SimpleJavaFileObject {
        private final String text;

        Source(URI uri, String text) {
            super(uri, Kind.SOURCE);
            this.text = text;
        }

        @Override
        public boolean isNameCompatible(String simpleName, Kind kind) {
            return kind == Kind.SOURCE;
        }

        @Override
        public CharSequence getCharContent(boolean ignoreEncodingErrors) {
            return text;
        }
    }

    /** Writes class files into the current request's output folder (an option would key a context of its own). */
    private static final class OutputFolder extends ForwardingJavaFileManager<StandardJavaFileManager> {
        private Path folder;

        OutputFolder(StandardJavaFileManager files) {
            super(files);
        }

        @Override
        public boolean hasLocation(Location location) {
            return location == StandardLocation.CLASS_OUTPUT || super.hasLocation(location);
        }

        @Override
        public JavaFileObject getJavaFileForOutput(
                Location location, String className, JavaFileObject.Kind kind, FileObject sibling) throws IOException {
            if (location != StandardLocation.CLASS_OUTPUT) {
                return super.getJavaFileForOutput(location, className, kind, sibling);
            }
            Path path = folder.resolve(className.replace('.', '/') + kind.extension);
            return fileManager.getJavaFileObjects(path).iterator().next();
        }
    }

    public static void main(String[] args) throws Exception {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        // One file manager for all requests keeps the platform classes and jars cached between compilations.
        OutputFolder files = new OutputFolder(compiler.getStandardFileManager(null, Locale.ROOT, StandardCharsets.UTF_8));
        Path warm = Files.createTempDirectory("cq-warm");
        compile(compiler, files, new Source(URI.create("string:///Warm.java"), WARM_UP), warm.toString(), "");
        out.println("READY");
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.split("\t", -1);
            if (parts.length != 3) {
                out.println("ERROR\t" + encode("bad request") + "\t");
                continue;
            }
            Path path = Path.of(parts[0]);
            String text;
            try {
                text = Files.readString(path, StandardCharsets.UTF_8);
            } catch (Exception e) {
                out.println("ERROR\t" + encode("cannot read the source: " + e) + "\t");
                continue;
            }
            out.println(compile(compiler, files, new Source(path.toUri(), text), parts[1], parts[2]));
        }
    }

    private static String compile(
            JavaCompiler compiler, OutputFolder files, Source source, String outDir, String classpath) {
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        StringWriter log = new StringWriter();
        StringBuilder mains = new StringBuilder();
        boolean[] packaged = {false};
        boolean ok;
        try {
            List<String> options = List.of(
                "-encoding", "UTF8", "-proc:none", "-implicit:none", "-nowarn", "-g:none", "-cp", classpath);
            files.folder = Path.of(outDir);
            ok = contexts.getTask(log, files, diagnostics, options, null, List.of(source), task -> {
                SourcePositions positions = Trees.instance(task).getSourcePositions();
                task.addTaskListener(new TaskListener() {
                    @Override
                    public void finished(TaskEvent event) {  // read the tree as parsed, before javac rewrites it
                        if (event.getKind() == TaskEvent.Kind.PARSE) {
                            mains.append(mainsOf(event.getCompilationUnit(), positions));
                            packaged[0] |= event.getCompilationUnit().getPackage() != null;
                        }
                    }
                });
                return task.call();  // one pass, as javac runs (parse() then generate() costs twice as much)
            });
        } catch (Exception | Error e) {  // javac's own failures, e.g. StackOverflowError on deep nesting
            ok = false;
            log.write("compiler crashed: " + e);
        }
        if (packaged[0]) {
            contexts = new JavacTaskPool(1);
        }
        StringBuilder text = new StringBuilder(log.toString());
        for (Diagnostic<? extends JavaFileObject> d : diagnostics.getDiagnostics()) {
            if (d.getKind() == Diagnostic.Kind.ERROR && text.length() < MAX_DIAGNOSTICS) {
                String name = d.getSource() == null ? "" : d.getSource().getName();
                name = name.substring(name.lastIndexOf('/') + 1);
                text.append(name).append(':').append(d.getLineNumber()).append(": error: ")
                    .append(d.getMessage(Locale.ROOT)).append('\n');
            }
        }
        String diagnosticText = text.length() > MAX_DIAGNOSTICS ? text.substring(0, MAX_DIAGNOSTICS) : text.toString();
        return (ok ? "OK\t" : "ERROR\t") + encode(diagnosticText) + "\t" + (ok ? encode(mains.toString()) : "");
    }

    /** "name\toffset" lines: each top-level class declaring a static main(String[]), and where that main is. */
    private static String mainsOf(CompilationUnitTree unit, SourcePositions positions) {
        StringBuilder out = new StringBuilder();
        for (Tree declaration : unit.getTypeDecls()) {
            if (declaration instanceof ClassTree) {
                ClassTree type = (ClassTree) declaration;
                for (Tree member : type.getMembers()) {
                    if (member instanceof MethodTree && isMain((MethodTree) member)) {
                        out.append(type.getSimpleName()).append('\t');
                        out.append(positions.getStartPosition(unit, member)).append('\n');
                    }
                }
            }
        }
        return out.toString();
    }

    private static boolean isMain(MethodTree method) {
        return method.getName().contentEquals("main")
            && method.getModifiers().getFlags().contains(Modifier.STATIC)
            && method.getParameters().size() == 1;
    }

    private static String encode(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }
}
