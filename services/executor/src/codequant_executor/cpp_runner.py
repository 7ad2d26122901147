"""C++ programs: compiled with g++ and run in the sandbox, each step under the program's slot uid."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from codequant import settings
from codequant.limits import Limits
from codequant_executor.outcome import Verdict, generic_status
from codequant_executor.runner import HARNESS, Runner, RunnerSetup
from codequant_executor.sandbox import PROOF_FD, Outcome
from codequant_executor.status import Status

#: MultiPL-E compiles C++ as C++17.
CXX_FLAGS = ["-std=c++17", "-O0", "-pipe", "-w"]
#: What g++ may take beside the program's own limits (parsing <bits/stdc++.h> alone costs ~1 s and ~200 MB).
COMPILE_TIMEOUT_S = 60.0
COMPILE_MEMORY_MB = 2048
log = logging.getLogger(__name__)
_STDCXX = re.compile(r"^[ \t]*#[ \t]*include[ \t]*<bits/stdc\+\+\.h>", re.MULTILINE)
_ASSERTION = re.compile(r"Assertion `.*' failed\.", re.DOTALL)
_CRASH = {signal.SIGABRT, signal.SIGSEGV, signal.SIGFPE, signal.SIGBUS, signal.SIGILL}


def gxx() -> str:
    """The g++ on PATH (Debian: g++)."""
    found = shutil.which("g++")
    if found is None:
        raise FileNotFoundError("g++ not found: install it (Debian: g++; scripts/setup-system.sh does)")
    return os.path.realpath(found)


HARNESS_SOURCE = HARNESS / "run_cpp.cpp"
HARNESS_OBJECT = "run_cpp.o"


def support_folder(compiler: str) -> Path | None:
    """A folder with the harness compiled (``run_cpp.o``) and <bits/stdc++.h> precompiled
    (``bits/stdc++.h.gch``, beside a copy of the header), both with ``CXX_FLAGS``; built once per compiler,
    flags and harness source, outside the sandbox (neither is untrusted); None when they cannot be built.

    MultiPL-E's C++ prompts include <bits/stdc++.h>; parsing it is most of a compilation (measured: 1.8 s of
    CPU without, 0.35 s with the precompiled header, on a loaded 2-core machine).
    """
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
        deps = subprocess.run(
            [compiler, *CXX_FLAGS, "-x", "c++", "-M", "-"],
            input="#include <bits/stdc++.h>\n",
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("no precompiled C++ support: %s", exc)
        return None
    header = next(iter(re.findall(r"(/\S*/bits/stdc\+\+\.h)\b", deps)), None)
    if header is None:
        return None
    layout = f"{HARNESS_OBJECT}, bits/stdc++.h and its .gch"  # what the folder holds
    key = [version, header, layout, HARNESS_SOURCE.read_text(), *CXX_FLAGS]
    digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:16]
    folder = settings.cache_dir() / "cpp" / digest
    if (folder / HARNESS_OBJECT).exists():
        return folder
    staging = folder.with_name(f"{digest}.tmp{os.getpid()}")
    (staging / "bits").mkdir(parents=True, exist_ok=True)
    for command in (
        [compiler, *CXX_FLAGS, "-x", "c++-header", header, "-o", str(staging / "bits" / "stdc++.h.gch")],
        [compiler, *CXX_FLAGS, "-c", str(HARNESS_SOURCE), "-o", str(staging / HARNESS_OBJECT)],
    ):
        built = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if built.returncode != 0:
            log.warning("no precompiled C++ support: %s", built.stderr[-500:])
            shutil.rmtree(staging, ignore_errors=True)
            return None
    # The header itself beside it: the program's own #include finds this copy (its headers are then no-ops
    # behind their guards); g++ does not look further once it has found the folder of a used .gch.
    shutil.copyfile(header, staging / "bits" / "stdc++.h")
    for path in (staging, staging / "bits"):
        path.chmod(0o755)
    for path in [*staging.iterdir(), *(staging / "bits").iterdir()]:
        if path.is_file():
            path.chmod(0o644)
    try:
        staging.rename(folder)
    except OSError:  # another process got there first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


class CppRunner(Runner):
    """Compiles ``program`` (with ``harness/run_cpp.cpp``, precompiled when possible, if it has tests) inside the
    sandbox, then runs it.

    With tests, the harness is linked in and the program's calls to ``exit`` are redirected to it, so it proves
    that ``main`` returned: a completion that calls ``exit(0)`` before the tests ran does not pass. A bare
    program passes on exit 0.
    """

    language = "cpp"
    bare_exit_passes = True
    commands = ("g++",)

    def __init__(self, setup: RunnerSetup) -> None:
        self.compiler = gxx()
        support = support_folder(self.compiler)
        super().__init__(setup, setup.sandbox.mounts([support or HARNESS_SOURCE.parent]))
        self.harness = f"{self.mounts[0].inside}/{HARNESS_OBJECT if support else HARNESS_SOURCE.name}"
        self.pch = self.mounts[0].inside if support else None

    def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome | Verdict:
        with self.scratch(program) as (workdir, _):
            if self.sandbox.drops_uid(self.mounts):
                os.chown(workdir, self.sandbox.uid(slot), self.sandbox.uid(slot))
            compiled = self._compile(
                workdir, limits, slot, with_harness=bool(tests_line), stdcxx=bool(_STDCXX.search(program))
            )
            if compiled is not None:
                return compiled
            argv = [f"{self.sandbox.inside_workdir(workdir)}/program"] + ([PROOF_FD] if tests_line else [])
            return self.sandboxed(argv, workdir, limits, slot, secret, proof=bool(tests_line))

    def status(self, outcome: Outcome, completed: bool) -> Status:
        status = generic_status(outcome, completed)
        return self.classify(outcome) if status in (None, Status.KILLED) else status

    def _compile(self, workdir: Path, limits: Limits, slot: int, *, with_harness: bool, stdcxx: bool) -> Verdict | None:
        """g++ in the sandbox (the source is untrusted: ``#include "/etc/..."`` sees only the sandbox), writing
        the binary into the run's folder; a Verdict when compiling failed, else None.

        A program that includes <bits/stdc++.h> gets it first, precompiled (``-include``; its later
        ``#include`` lines are then no-ops behind the header's guards, as without the precompiled header)."""
        argv = [self.compiler, *CXX_FLAGS]
        if stdcxx and self.pch:
            argv += [f"-I{self.pch}", "-include", "bits/stdc++.h"]
        argv += ["-o", f"{workdir}/program", f"{workdir}/program.cpp"]
        if with_harness:
            argv += [self.harness, "-Wl,--wrap=exit"]
        budget = Limits(
            max(limits.timeout_s, COMPILE_TIMEOUT_S), max(limits.memory_mb, COMPILE_MEMORY_MB), limits.max_output_bytes
        )
        outcome = self.sandboxed(argv, workdir, budget, slot, proof=False, proc=True, writable=[workdir])
        if outcome.exit_code == 0 and not outcome.timed_out:
            return None
        if outcome.timed_out:
            return Verdict(Status.TIMEOUT, None, "", f"codequant: compiling took over {budget.timeout_s:.0f} s\n", 0.0)
        diagnostics = outcome.stderr.replace(f"{workdir}/", "")
        return Verdict(Status.SYNTAX_ERROR, outcome.exit_code, "", diagnostics, outcome.duration_s)

    def classify(self, outcome: Outcome) -> Status:
        """A C++ program that exited non-zero or died: a failed ``assert`` aborts with its message."""
        code = outcome.exit_code
        if code is not None and code < 0:
            if -code == signal.SIGABRT and _ASSERTION.search(outcome.stderr):
                return Status.FAILURE
            if "std::bad_alloc" in outcome.stderr:
                return Status.MEMORY_LIMIT
            return Status.EXCEPTION if -code in _CRASH else Status.KILLED
        return Status.EXCEPTION
