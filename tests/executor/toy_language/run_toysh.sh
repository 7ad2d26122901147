# The toy language's harness (tests/executor/test_language_registry.py): bash PROGRAM TESTS_LINE PROOF_FD, with a
# per-run secret line on standard input. The program is sourced, so an `exit` in it ends the harness before the
# proof is written: only a program that ran to its end (tests included) proves it.
IFS= read -r secret
. "$1"
printf '%s\n' "$secret" >&"$3"
