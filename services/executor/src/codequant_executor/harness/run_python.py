"""Runs one untrusted Python program inside the sandbox and prints a per-run marker once its tests completed.

Usage: python -I -S run_python.py PROGRAM MARKER TESTS_LINE

The marker is printed only if the program ran to its end, or if it raised SystemExit(0) from its
test section (``unittest.main()`` does that); an exit with status 0 from anywhere before the tests
(``sys.exit(0)`` in a completion, or ``os._exit(0)``) prints no marker and does not pass.
TESTS_LINE is the first line of the tests in PROGRAM (0 when unknown: then any SystemExit(0) counts).
Imports nothing beyond sys and os at start-up: every module imported here costs each program time.
"""

import os
import sys


def main() -> None:
    path, marker, tests_line = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as exc:
        import traceback

        sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        sys.exit(1)
    # The program is the __main__ module (unittest.main() and pickling look there), as with `python PROGRAM`.
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__
    sys.modules["__main__"] = module
    sys.argv = [path]
    try:
        exec(code, module.__dict__)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
        innermost, tb = 0, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == path:
                innermost = tb.tb_lineno
            tb = tb.tb_next
        if tests_line and innermost < tests_line:
            sys.stdout.flush()
            os._exit(0)
    sys.stdout.flush()
    print(marker, flush=True)


main()
