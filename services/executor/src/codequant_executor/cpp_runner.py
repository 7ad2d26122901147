"""C++ programs: compiled with g++ and run in the sandbox, each step under the program's slot uid."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

from codequant import settings
from codequant.limits import Limits
from codequant_executor.outcome import Verdict, generic_status
from codequant_executor.runner import HARNESS, Runner, RunnerSetup, after_compiling
from codequant_executor.sandbox import PROOF_FD, Outcome
from codequant_executor.status import Status

#: MultiPL-E compiles C++ as C++17.
CXX_FLAGS = ["-std=c++17", "-O0", "-pipe", "-w"]
#: The memory g++ may take beside the program's own limit (parsing <bits/stdc++.h> alone costs ~200 MB); its time
#: is the program's own.
COMPILE_MEMORY_MB = 2048
log = logging.getLogger(__name__)
_STDCXX = re.compile(r"[ \t]*#[ \t]*include[ \t]*<bits/stdc\+\+\.h>[ \t]*$")
_SYSTEM_INCLUDE = re.compile(r"[ \t]*#[ \t]*include[ \t]*<[^>\n]+>[ \t]*$")
#: Comments and literals (a literal may hold "//" or "/*"): comments become blanks, line breaks kept.
_COMMENTS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.DOTALL)
_TESTS_MAIN = re.compile(r"\bint\s+main\s*\(")
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


def rename_tests_main(program: str, tests_line: int, entry: str) -> str | None:
    """``program`` with the tests' ``int main(`` (the first in the lines from ``tests_line`` on) turned into the C
    function ``entry`` and ``return 0;`` before the tests' last ``}`` (only ``main`` returns 0 when it ends
    without a return statement), line numbers unchanged; None when the tests define no main or do not end
    with its ``}``."""
    lines = program.split("\n")
    tests = "\n".join(lines[tests_line - 1 :])
    renamed, count = _TESTS_MAIN.subn(f'extern "C" int {entry}(', tests, count=1)
    end = renamed.rstrip().rfind("}")
    if not count or end < 0 or end != len(renamed.rstrip()) - 1:
        return None
    return "\n".join([*lines[: tests_line - 1], f"{renamed[:end]}return 0;{renamed[end:]}"])


def precompiled_header_fits(program: str) -> bool:
    """Whether compiling ``program`` with <bits/stdc++.h> included first (precompiled) is the same as without:
    it includes the header, and nothing but blank lines, comments and other ``#include <...>`` lines comes
    before (no macro of its own, such as ``_GLIBCXX_DEBUG`` or ``#define vector``, could change the header)."""
    text = _COMMENTS.sub(lambda m: "\n" * m.group().count("\n") or " ", program)
    for line in text.split("\n"):
        if _STDCXX.match(line):
            return True
        if line.strip() and not _SYSTEM_INCLUDE.match(line):
            return False
    return False


class CppRunner(Runner):
    """Compiles ``program`` (with ``harness/run_cpp.cpp``, precompiled when possible, if it has tests) inside the
    sandbox, then runs it.

    With tests, the tests' ``main`` is renamed for the run and the harness owns ``main``: it proves that the
    tests' main returned, so no other way of exiting with status 0 passes. A bare program passes on exit 0.
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
        entry = None
        if tests_line:
            entry = f"__cq_tests_main_{secrets.token_hex(8)}"  # a name the program cannot know or #define
            program = rename_tests_main(program, tests_line, entry)
            if program is None:
                note = "codequant: the tests do not define int main() { ... }\n"
                return Verdict(Status.SYNTAX_ERROR, None, "", note, 0.0)
        with self.scratch(program) as (workdir, _):
            if self.sandbox.drops_uid(self.mounts):
                os.chown(workdir, self.sandbox.uid(slot), self.sandbox.uid(slot))
            compiled = self._compile(workdir, limits, slot, entry=entry, stdcxx=precompiled_header_fits(program))
            if isinstance(compiled, Verdict):
                return compiled
            left = after_compiling(limits, compiled)
            if isinstance(left, Verdict):
                return left
            argv = [f"{self.sandbox.inside_workdir(workdir)}/program"] + ([PROOF_FD] if tests_line else [])
            return self.sandboxed(argv, workdir, left, slot, secret, proof=bool(tests_line))

    def status(self, outcome: Outcome, completed: bool) -> Status:
        status = generic_status(outcome, completed)
        return self.classify(outcome) if status in (None, Status.KILLED) else status

    def _compile(self, workdir: Path, limits: Limits, slot: int, *, entry: str | None, stdcxx: bool) -> Verdict | float:
        """g++ in the sandbox (the source is untrusted: ``#include "/etc/..."`` sees only the sandbox), writing
        the binary into the run's folder, within the program's own timeout (CPU and wall clock: a few hundred
        bytes of constexpr evaluation can keep g++ busy for minutes); a Verdict when compiling failed, else the
        seconds it took.

        A program that includes <bits/stdc++.h> gets it first, precompiled (``-include``; its later
        ``#include`` lines are then no-ops behind the header's guards, as without the precompiled header)."""
        argv = [self.compiler, *CXX_FLAGS]
        if stdcxx and self.pch:
            argv += [f"-I{self.pch}", "-include", "bits/stdc++.h"]
        argv += ["-o", f"{workdir}/program", f"{workdir}/program.cpp"]
        if entry is not None:  # the harness's main calls the tests' main, renamed to ``entry``
            argv += [self.harness, f"-Wl,--defsym=__cq_tests_entry={entry}"]
        budget = replace(limits, memory_mb=max(limits.memory_mb, COMPILE_MEMORY_MB))
        outcome = self.sandboxed(argv, workdir, budget, slot, proof=False, proc=True, writable=[workdir])
        if outcome.exit_code == 0 and not outcome.timed_out:
            return outcome.duration_s
        if outcome.timed_out or outcome.exit_code == -signal.SIGXCPU:
            return Verdict(Status.TIMEOUT, None, "", f"codequant: compiling took over {limits.timeout_s:g} s\n", 0.0)
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
