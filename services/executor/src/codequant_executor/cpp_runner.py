"""C++ programs: compiled with g++ and run in the sandbox, each step under the program's slot uid."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.outcome import Verdict, generic_status, proven
from codequant_executor.sandbox import PROOF_FD, Outcome, Sandbox
from codequant_executor.status import Status

#: MultiPL-E compiles C++ as C++17.
CXX_FLAGS = ["-std=c++17", "-O0", "-pipe", "-w"]
#: What g++ may take beside the program's own limits (parsing <bits/stdc++.h> alone costs ~1 s and ~200 MB).
COMPILE_TIMEOUT_S = 60.0
COMPILE_MEMORY_MB = 2048
_ASSERTION = re.compile(r"Assertion `.*' failed\.", re.DOTALL)
_CRASH = {signal.SIGABRT, signal.SIGSEGV, signal.SIGFPE, signal.SIGBUS, signal.SIGILL}


def gxx() -> str:
    """The g++ on PATH (Debian: g++)."""
    found = shutil.which("g++")
    if found is None:
        raise FileNotFoundError("g++ not found: install it (Debian: g++; scripts/setup-system.sh does)")
    return os.path.realpath(found)


class CppRunner:
    """Compiles ``program`` (with ``harness/run_cpp.cpp`` when it has tests) inside the sandbox, then runs it.

    With tests, the harness is linked in and the program's calls to ``exit`` are redirected to it, so it proves
    that ``main`` returned: a completion that calls ``exit(0)`` before the tests ran does not pass. A bare
    program passes on exit 0.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.compiler = gxx()
        harness = Path(__file__).resolve().parent / "harness"
        self.mounts = sandbox.mounts([harness])
        self.harness = f"{self.mounts[0].inside}/run_cpp.cpp"

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        workdir = self.sandbox.workdir()
        try:
            (workdir / "program.cpp").write_text(program, encoding="utf-8")
            if self.sandbox.drops_uid(self.mounts):
                os.chown(workdir, self.sandbox.uid(slot), self.sandbox.uid(slot))
            compiled = self._compile(workdir, limits, slot, with_harness=bool(tests_line))
            if compiled is not None:
                return compiled
            secret = secrets.token_hex(16).encode() + b"\n"
            argv = [f"{self.sandbox.inside_workdir(workdir)}/program"] + ([PROOF_FD] if tests_line else [])
            outcome = self.sandbox.run(
                argv,
                workdir=workdir,
                mounts=self.mounts,
                limits=limits,
                slot=slot,
                nproc=64,
                memory="address-space",
                stdin=secret,
                proof=bool(tests_line),
                proc=False,
            )
        finally:
            self.sandbox.cleanup(workdir)
        completed, note = proven(outcome, secret) if tests_line else (outcome.exit_code == 0, "")
        status = generic_status(outcome, completed)
        if status in (None, Status.KILLED):
            status = _classify(outcome)
        return Verdict(status, outcome.exit_code, outcome.stdout, outcome.stderr + note, outcome.duration_s)

    def _compile(self, workdir: Path, limits: Limits, slot: int, *, with_harness: bool) -> Verdict | None:
        """g++ in the sandbox (the source is untrusted: ``#include "/etc/..."`` sees only the sandbox), writing
        the binary into the run's folder; a Verdict when compiling failed, else None."""
        argv = [self.compiler, *CXX_FLAGS, "-o", f"{workdir}/program", f"{workdir}/program.cpp"]
        if with_harness:
            argv += [self.harness, "-Wl,--wrap=exit"]
        budget = Limits(
            max(limits.timeout_s, COMPILE_TIMEOUT_S), max(limits.memory_mb, COMPILE_MEMORY_MB), limits.max_output_bytes
        )
        outcome = self.sandbox.run(
            argv,
            workdir=workdir,
            mounts=self.mounts,
            limits=budget,
            slot=slot,
            nproc=64,
            memory="address-space",
            writable=[workdir],
        )
        if outcome.exit_code == 0 and not outcome.timed_out:
            return None
        if outcome.timed_out:
            return Verdict(Status.TIMEOUT, None, "", f"codequant: compiling took over {budget.timeout_s:.0f} s\n", 0.0)
        diagnostics = outcome.stderr.replace(f"{workdir}/", "")
        return Verdict(Status.SYNTAX_ERROR, outcome.exit_code, "", diagnostics, outcome.duration_s)


def _classify(outcome: Outcome) -> Status:
    """Status of a C++ program that exited non-zero or died: a failed ``assert`` aborts with its message."""
    code = outcome.exit_code
    if code is not None and code < 0:
        if -code == signal.SIGABRT and _ASSERTION.search(outcome.stderr):
            return Status.FAILURE
        if "std::bad_alloc" in outcome.stderr:
            return Status.MEMORY_LIMIT
        return Status.EXCEPTION if -code in _CRASH else Status.KILLED
    return Status.EXCEPTION
