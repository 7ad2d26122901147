"""Runs one untrusted Python program inside the sandbox and proves to the executor that its tests completed.

Usage: python -I -S run_python.py PROGRAM TESTS_LINE PROOF_FD, with a per-run secret line on standard input;
or ``main(PROGRAM, TESTS_LINE, PROOF_FD)`` in a child of the fork server (``zygote.py``).

The proof is the secret, written to PROOF_FD (a pipe to the executor, not stdout) by an audit hook that the
program can neither remove nor reach, and only when one of these happened:

- the program's last top-level statement ran: a statement appended after the tests (or after a bare
  program, TESTS_LINE 0) raises the audit event ``codequant.completed``, and the hook checks that the event
  comes from that very code object at that line (not from a function, ``eval`` or ``exec`` the program made);
- a bare program (TESTS_LINE 0) raised SystemExit with status 0;
- the tests called ``unittest.main()``, which raised SystemExit with status 0 straight from unittest's own
  ``TestProgram`` (the traceback is exactly tests -> ``TestProgram.__init__`` -> ``runTests``, code objects
  compared by identity with the ones loaded before the program ran).

The program (prompt + completion) and the tests are compiled separately and run one after the other in the
same ``__main__`` namespace, in a thread of their own (Python signal handlers, which receive the frame they
interrupt, can only be installed from the main thread, which runs nothing but this harness). The secret lives
only in the hook's closure: the hook stops the process at once if the program asks for what could reach it
(``gc.get_objects``/``get_referrers``/``get_referents``, ``sys._current_frames``, ``sys.settrace``/
``setprofile``, new audit hooks, hand-made code objects, ``ctypes`` and interpreter-test modules, files under
/proc). Exiting early (``os._exit(0)``, ``sys.exit(0)`` from the completion) leaves no proof and does not pass.
Imports nothing beyond builtin modules at start-up: every module imported here costs each program time.
"""

import _thread
import gc
import posix
import sys

COMPLETED = "codequant.completed"
EXITED = "codequant.exited"
STARTED = "codequant.started"
TESTS = "codequant.tests"
DENIED_STATUS = 121
FORBIDDEN_EVENTS = frozenset(
    {
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        "sys._current_frames",
        "sys._current_exceptions",
        "sys.settrace",
        "sys.setprofile",
        "sys.addaudithook",
        "code.__new__",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "ctypes.addressof",
        "ctypes.string_at",
        "ctypes.wstring_at",
        "ctypes.call_function",
    }
)
FORBIDDEN_MODULES = frozenset(
    {"ctypes", "_ctypes", "_testcapi", "_testinternalcapi", "_testmultiphase", "_xxsubinterpreters"}
)


def fail(message, status=1):
    posix.write(2, message.encode("utf-8", "replace"))
    posix._exit(status)


def read_secret():
    data = b""
    while not data.endswith(b"\n"):
        chunk = posix.read(0, 64)
        if not chunk:
            fail("codequant harness: no secret on standard input\n", 2)
        data += chunk
    return data


def compile_program(source, path, tests_line, trigger_name):
    """(head code or None, code of the rest ending with the completion event), or print a SyntaxError and exit.

    Line numbers match PROGRAM's; the completion event is raised by one extra line after the last one, through
    ``trigger_name`` (a global of the program's namespace under a random name: a program binding its own
    ``__import__`` or ``sys`` does not break it).
    """
    trigger = f"\n{trigger_name}({COMPLETED!r})\n"
    lines = source.split("\n")  # TESTS_LINE counts "\n" only, as the executor composes programs
    if tests_line:
        tests_line -= trailing_decorators(lines[: tests_line - 1])  # they decorate the tests' first definition
    head = "\n".join(lines[: tests_line - 1]) + "\n" if tests_line else None
    tail = "\n" * (tests_line - 1) + "\n".join(lines[tests_line - 1 :]) if tests_line else source
    try:
        head_code = compile(head, path, "exec", dont_inherit=True) if head is not None else None
        tail_code = compile(tail + trigger, path, "exec", dont_inherit=True)
        # The trigger is the last statement: its line, as Python counts lines (it also ends lines at "\r").
        return head_code, tail_code, max(line for _, _, line in tail_code.co_lines() if line is not None)
    except MemoryError:
        raise
    except BaseException as separate:  # SyntaxError, ValueError (NUL bytes), RecursionError (deep nesting)
        error = separate
    if head is not None and not isinstance(error, RecursionError):
        try:
            compile(source, path, "exec", dont_inherit=True)
            error = SyntaxError("the completion does not end before the tests start (they only compile together)")
        except BaseException as whole:
            error = whole
    if isinstance(error, SyntaxError):
        import traceback

        lines = "".join(traceback.format_exception_only(type(error), error)).splitlines(keepends=True)
        text = "".join(line if len(line) <= 500 else line[:500] + " ...\n" for line in lines)  # no 100 kB lines
    else:
        text = f"SyntaxError: {error}\n"  # NUL bytes or nesting too deep to compile: still a compile error
    fail(text)


def trailing_decorators(head_lines):
    """How many of the completion's last lines are top-level decorators (with blank and comment lines among
    them): as in the whole program, they decorate the tests' first definition, so they are compiled with the
    tests. Only one-line decorators whose expression compiles on its own: nothing can open a string or a
    bracket that would swallow the tests. 0 when the completion does not end with one."""
    moved = found = 0
    for line in reversed(head_lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            moved += 1
            continue
        if not line.startswith("@"):
            break
        try:
            compile(line[1:], "", "eval")
        except BaseException:
            break
        moved += 1
        found = moved
    return found


def install_hook(secret, proof_fd, tail_code, trigger_line, runner_code, bare, unittest_codes):
    """The audit hook that guards the secret, hands the tests' code to the genuine runner once, and writes the
    secret once the run is proven complete.

    Everything the hook uses is bound here, in its closure (deny-lists, builtins, functions): nothing it reads
    at call time lives in a module's globals, which the program can reach through any frame's f_globals.
    Nothing outside this closure refers to the hook, the secret or (until the runner takes it) the tests'
    code. The genuine runner frame is the one that raises STARTED first; the tests' code goes only to that
    frame, and completion counts only from a frame running the tests' code that this very frame called, once.
    The hook never calls the program's code and allocates no tracked object before it turns off the garbage
    collector, so no finalizer of the program can run while its frame (and so the secret) is on the stack.
    """
    write, exit_now, getframe = posix.write, posix._exit, sys._getframe
    gc_enabled, gc_disable, gc_enable = gc.isenabled, gc.disable, gc.enable
    init_code, run_code = unittest_codes
    forbidden_events, forbidden_modules = FORBIDDEN_EVENTS, FORBIDDEN_MODULES
    completed, exited, started, tests_event = COMPLETED, EXITED, STARTED, TESTS
    status, str_type, bytes_type, int_type, list_type, system_exit = DENIED_STATUS, str, bytes, int, list, SystemExit
    kind, count = type, len
    state = {"runner": None, "tests": tail_code, "proven": False}

    def unittest_exit(exc, runner_frame):
        """A SystemExit raised by unittest's own TestProgram.runTests, called from the tests' top level."""
        tb = exc.__traceback__
        chain = []
        while tb is not None:
            chain.append(tb.tb_frame)
            tb = tb.tb_next
        if count(chain) != 4 or init_code is None:
            return False
        runner, tests, init, run = chain
        return (
            runner is runner_frame
            and tests.f_code is tail_code
            and init.f_code is init_code
            and run.f_code is run_code
            and tests.f_back is runner
            and init.f_back is tests
            and run.f_back is init
        )

    def hook(event, args):
        if kind(event) is not str_type:
            return
        if event in forbidden_events:
            write(2, b"codequant: the program used a forbidden interpreter facility: " + event.encode() + b"\n")
            exit_now(status)
        elif event == "import":
            name = args[0]
            if kind(name) is str_type and name in forbidden_modules:
                write(2, b"codequant: the program may not import " + name.encode() + b"\n")
                exit_now(status)
        elif event == "open":
            path = args[0]
            if (kind(path) is str_type and path.startswith("/proc")) or (
                kind(path) is bytes_type and path.startswith(b"/proc")
            ):
                write(2, b"codequant: the program may not open files under /proc\n")
                exit_now(status)
        elif event in (completed, exited, started, tests_event):
            was_enabled = gc_enabled()
            gc_disable()  # no collection, hence no finalizer of the program, while this frame is live
            caller = getframe(1)
            runner_frame = state["runner"]
            proven = False
            if event == started:
                if runner_frame is None and caller.f_code is runner_code:
                    state["runner"] = caller  # the first runner frame: ours, before any code of the program
            elif event == tests_event:
                box = args[0] if count(args) == 1 else None
                if caller is runner_frame and kind(box) is list_type and state["tests"] is not None:
                    box.append(state["tests"])
                    state["tests"] = None  # handed over once
            elif state["proven"] or runner_frame is None:
                pass
            elif event == completed:
                proven = (
                    caller.f_code is tail_code and caller.f_lineno == trigger_line and caller.f_back is runner_frame
                )
            else:
                exc = args[0] if count(args) == 1 else None
                proven = (
                    caller is runner_frame
                    and kind(exc) is system_exit
                    and (exc.code is None or exc.code is False or (kind(exc.code) is int_type and exc.code == 0))
                    and (bare or unittest_exit(exc, runner_frame))
                )
            del caller, runner_frame
            if proven:
                state["proven"] = True
                write(proof_fd, secret)
            if was_enabled:
                gc_enable()

    sys.addaudithook(hook)  # from now on the interpreter's list of hooks is the only reference to it


def runner(head_code, namespace, outcome, done):
    """Run the program, then its tests (handed over by the hook once the program has run: no frame the program
    can reach holds them meanwhile), in this thread; record how they ended."""
    sys.audit(STARTED)  # this frame is the genuine runner: the hook accepts no other
    try:
        if head_code is not None:
            exec(head_code, namespace)
        del head_code
        tests = []
        sys.audit(TESTS, tests)
        exec(tests.pop(), namespace)
    except SystemExit as exc:
        outcome.append(exc)
        sys.audit(EXITED, exc)  # the hook checks that the event comes from this very frame
    except BaseException as exc:
        outcome.append(exc)
    finally:
        done.release()


def main(path, tests_line, proof_fd):
    """Run PROGRAM with its tests; ends by raising SystemExit with the program's exit status."""
    secret = read_secret()
    with open(path, encoding="utf-8") as handle:
        source = handle.read()
    trigger_name = "__cq_completed_" + posix.urandom(12).hex()
    head_code, tail_code, trigger_line = compile_program(source, path, tests_line, trigger_name)
    unittest_codes = (None, None)
    if tests_line and "unittest" in tail_code.co_names:
        from unittest.main import TestProgram  # imported before the program runs: these are the originals

        unittest_codes = (TestProgram.__init__.__code__, TestProgram.runTests.__code__)
    # The program is the __main__ module (unittest.main() and pickling look there), as with `python PROGRAM`.
    module = type(sys)("__main__")
    module.__file__ = path
    module.__builtins__ = __builtins__
    setattr(module, trigger_name, sys.audit)
    sys.modules["__main__"] = module
    sys.argv = [path]
    install_hook(secret, proof_fd, tail_code, trigger_line, runner.__code__, not tests_line, unittest_codes)
    del secret, tail_code  # only the hook holds them now
    outcome, done = [], _thread.allocate_lock()
    done.acquire()
    _thread.start_new_thread(runner, (head_code, module.__dict__, outcome, done))
    del head_code
    done.acquire()
    if not outcome:
        sys.exit(0)
    exc = outcome[0]
    if isinstance(exc, SystemExit):
        raise SystemExit(exc.code)
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # without this harness's frame
    sys.__excepthook__(type(exc), exc.with_traceback(tb), tb)
    sys.stderr.flush()
    sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
