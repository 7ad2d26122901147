// Linked into a C++ program with tests (with -Wl,--wrap=exit) to prove to the executor that its main returned.
//
// Before the program's own initialisers run, this reads a per-run secret line from standard input, and an
// exit handler is registered that writes it to the proof descriptor (the last argument; glibc passes
// constructors argc and argv) when
// the process ends through main's return. Every call the program makes to exit() goes through __wrap_exit
// (the linker redirects the program's references to exit), which marks the run as ended early: no proof.
// _exit, _Exit and quick_exit skip exit handlers and leave no proof either. Native code can read its whole
// address space, so this guards against accidental early exits, not against a program written to forge the
// proof (the sandbox contains either).
#include <stdlib.h>
#include <unistd.h>

namespace {

char secret[128];
size_t secret_length = 0;
int proof_fd = -1;
bool exited_early = false;

void write_proof() {
    if (!exited_early && secret_length > 0) {
        (void)!write(proof_fd, secret, secret_length);
    }
}

__attribute__((constructor(101))) void read_secret(int argc, char **argv, char **) {
    static const char no_secret[] = "codequant harness: no secret on standard input\n";
    if (argc < 2) {
        _exit(2);
    }
    proof_fd = atoi(argv[argc - 1]);
    while (secret_length == 0 || secret[secret_length - 1] != '\n') {
        ssize_t got = read(0, secret + secret_length, sizeof secret - secret_length);
        if (got <= 0 || secret_length + (size_t)got >= sizeof secret) {
            (void)!write(2, no_secret, sizeof no_secret - 1);
            _exit(2);
        }
        secret_length += (size_t)got;
    }
    atexit(write_proof);
}

}  // namespace

extern "C" [[noreturn]] void __real_exit(int status);

extern "C" [[noreturn]] void __wrap_exit(int status) {
    exited_early = true;
    __real_exit(status);
}
