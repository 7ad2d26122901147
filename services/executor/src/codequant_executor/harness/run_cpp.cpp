// Linked into a C++ program with tests to prove to the executor that the tests' main returned.
//
// The executor renames the tests' `int main(` to a C function with a random name for this run and links with
// --defsym=__cq_tests_entry=<that name>: this file owns `main`, calls the tests' main through that symbol and,
// when it returns, writes a per-run secret (read from standard input before the program's own initialisers
// run) to the proof descriptor (the last argument, hidden from the tests' argv). Nothing else writes the proof,
// so no way of ending the process with status 0 without the tests' main returning proves anything: exit(0),
// _exit, quick_exit, err/errx/error (glibc's own exit), exit reached through dlsym, pthread_exit from the main
// thread, a signal handler that exits. A completion that defines its own main does not link (two mains); one
// that #defines main cannot reach the tests' main, whose name it never sees; a definition of
// __cq_tests_entry is overridden by the linker. Native code can read its whole address space (the secret
// included): a program written to forge the proof that way is contained by the sandbox, not by this file.
#include <stdlib.h>
#include <unistd.h>

extern "C" int __cq_tests_entry(int argc, char **argv, char **envp);

namespace {

char secret[128];
size_t secret_length = 0;
int proof_fd = -1;

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
}

}  // namespace

int main(int argc, char **argv, char **envp) {
    argv[argc - 1] = nullptr;  // the proof descriptor is not the tests' argument
    int status = __cq_tests_entry(argc - 1, argv, envp);
    (void)!write(proof_fd, secret, secret_length);
    return status;
}
