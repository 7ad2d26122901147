// Runs a program's main class under a security manager, then proves to the executor that main returned.
//
// Usage: java ... CqHarness <classes folder> <javatuples jar> <main class> <proof fd>, with a per-run
// secret line on standard input. The program's classes load in a class loader of their own whose parent is
// the platform loader: they cannot see (or shadow) this harness, and a class of the program may bear its
// name. Under the security manager the program may read system properties and the environment and nothing
// else: no files (not /proc, not the proof descriptor), no processes, no sockets, no native libraries, no
// reflection into other classes' private members (so no sun.misc.Unsafe), and no System.exit or
// Runtime.halt at all; it may shut down thread pools (modifyThread). The secret is written to the proof
// descriptor only after main returned.
import java.io.File;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.net.URLClassLoader;
import java.security.CodeSource;
import java.security.Permission;
import java.security.Policy;
import java.security.ProtectionDomain;
import java.util.PropertyPermission;

@SuppressWarnings("removal")
public final class CqHarness {
    private CqHarness() {
    }

    /** Loads the program; its assertion status stays what -ea made it. */
    private static final class ProgramLoader extends URLClassLoader {
        ProgramLoader(URL[] urls) {
            super(urls, ClassLoader.getPlatformClassLoader());
        }

        @Override
        public void setDefaultAssertionStatus(boolean enabled) {
        }

        @Override
        public void setPackageAssertionStatus(String name, boolean enabled) {
        }

        @Override
        public void setClassAssertionStatus(String name, boolean enabled) {
        }

        @Override
        public void clearAssertionStatus() {
        }
    }

    /** Everything for the JDK and this harness; properties, the environment and thread pools for the program. */
    private static final class ProgramPolicy extends Policy {
        private final ProtectionDomain harness = CqHarness.class.getProtectionDomain();

        @Override
        public boolean implies(ProtectionDomain domain, Permission permission) {
            if (domain == harness) {
                return true;
            }
            CodeSource source = domain.getCodeSource();
            URL location = source == null ? null : source.getLocation();
            if (location == null || "jrt".equals(location.getProtocol())) {
                return true;  // the JDK's own modules
            }
            if (permission instanceof PropertyPermission) {
                return "read".equals(permission.getActions());
            }
            if (!(permission instanceof RuntimePermission)) {
                return false;
            }
            // modifyThread: what ExecutorService.shutdown() asks for (without it the pool's threads keep the JVM
            // alive); it only adds control over the system group's threads, never the proof, written by main.
            String name = permission.getName();
            return name.startsWith("getenv.") || "modifyThread".equals(name);
        }
    }

    /** No exit, from anyone: the JVM ends when main returns or throws. */
    private static final class Guard extends SecurityManager {
        @Override
        public void checkExit(int status) {
            throw new SecurityException("codequant: a program may not exit the JVM (exit status " + status + ")");
        }
    }

    public static void main(String[] args) throws Throwable {
        byte[] secret = readSecret();
        FileOutputStream proof = new FileOutputStream("/proc/self/fd/" + args[3]);
        URL[] urls = {new File(args[0]).toURI().toURL(), new File(args[1]).toURI().toURL()};
        Class<?> program = Class.forName(args[2], false, new ProgramLoader(urls));
        Method main = program.getDeclaredMethod("main", String[].class);
        if (!Modifier.isStatic(main.getModifiers())) {
            throw new NoSuchMethodException(args[2] + ".main is not static");
        }
        main.setAccessible(true);
        Policy.setPolicy(new ProgramPolicy());
        System.setSecurityManager(new Guard());
        try {
            main.invoke(null, (Object) new String[0]);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
        proof.write(secret);
        proof.close();
    }

    private static byte[] readSecret() throws IOException {
        FileInputStream in = new FileInputStream(FileDescriptor.in);
        byte[] buffer = new byte[128];
        int length = 0;
        while (length == 0 || buffer[length - 1] != '\n') {
            int read = in.read(buffer, length, buffer.length - length);
            if (read < 0 || length + read >= buffer.length) {
                throw new IOException("codequant harness: no secret on standard input");
            }
            length += read;
        }
        return java.util.Arrays.copyOf(buffer, length);
    }
}
