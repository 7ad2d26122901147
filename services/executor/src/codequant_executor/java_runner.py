"""Java programs: compiled by the compile server, run with assertions enabled inside the sandbox."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from codequant.javasource import top_level_classes
from codequant.limits import Limits
from codequant_executor.java_compiler import CompileServer, CompileTimeout, java_home, support_classes
from codequant_executor.outcome import EARLY_EXIT, Verdict, generic_status, strip_marker
from codequant_executor.sandbox import Sandbox
from codequant_executor.status import Status

JAVATUPLES_ENV = "CODEQUANT_JAVATUPLES"
_UNCAUGHT = re.compile(r'Exception in thread "main" ([\w.$]+)')
# Fast start-up, small footprint: one GC thread, client JIT only, class-data sharing, no perf files in /tmp.
JVM_FLAGS = [
    "-ea",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
    "-XX:-UsePerfData",
    "-XX:ActiveProcessorCount=1",
    "-Xss8m",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:MaxDirectMemorySize=64m",
]


def javatuples_jar() -> Path:
    """javatuples 1.2 (Debian: libjavatuples-java), needed by MultiPL-E's Java prompts."""
    return Path(os.environ.get(JAVATUPLES_ENV, "/usr/share/java/javatuples.jar")).resolve()


class JavaRunner:
    """Compiles through a shared compile server, then runs ``CqHarness <MainClass> <marker>`` in the sandbox."""

    def __init__(self, sandbox: Sandbox, compiler: CompileServer | None = None) -> None:
        self.sandbox = sandbox
        self.compiler = compiler or CompileServer()
        self.home = java_home()
        self.jar = javatuples_jar()
        folders = [self.home, support_classes(), self.jar.parent]
        conf = self.home / "conf"
        if conf.is_dir():  # Debian links the JDK's conf files to /etc/java-<version>-openjdk
            folders += sorted({Path(os.path.realpath(p)).parent for p in conf.rglob("*") if p.is_symlink()})
        self.mounts = sandbox.mounts(folders)
        self.java = f"{self.mounts[0].inside}/bin/java"
        self.harness = self.mounts[1].inside
        self.jar_inside = f"{self.mounts[2].inside}/{self.jar.name}"

    def run(self, program: str, limits: Limits, slot: int, tests_line: int = 0) -> Verdict:
        classes = top_level_classes(program)
        main = next((c for c in classes if c.has_main), None)
        if main is None:
            return Verdict(Status.SYNTAX_ERROR, None, "", "codequant: no class declares static void main\n", 0.0)
        public = next((c.name for c in classes if c.public), main.name)
        workdir = self.sandbox.workdir()
        try:
            (workdir / "classes").mkdir(mode=0o755)
            source = workdir / f"{public}.java"
            source.write_text(program, encoding="utf-8")
            try:
                ok, diagnostics = self.compiler.compile(
                    source, workdir / "classes", str(self.jar), timeout_s=max(30.0, limits.timeout_s)
                )
            except CompileTimeout as exc:
                return Verdict(Status.TIMEOUT, None, "", f"codequant: {exc}\n", 0.0)
            if not ok:
                return Verdict(Status.SYNTAX_ERROR, 1, "", diagnostics.replace(str(workdir) + "/", ""), 0.0)
            marker = f"codequant-tests-completed-{secrets.token_hex(16)}"
            inside = self.sandbox.inside_workdir(workdir)
            heap = max(64, limits.memory_mb - 256)
            argv = [
                self.java,
                *JVM_FLAGS,
                f"-Xmx{heap}m",
                "-cp",
                f"{inside}/classes:{self.harness}:{self.jar_inside}",
                "CqHarness",
                main.name,
                marker,
            ]
            outcome = self.sandbox.run(
                argv, workdir=workdir, mounts=self.mounts, limits=limits, slot=slot, nproc=128, address_space=False
            )
        finally:
            self.sandbox.cleanup(workdir)
        stdout, completed = strip_marker(outcome.stdout, marker)
        status = generic_status(outcome, completed) or _classify(outcome.stderr)
        stderr = outcome.stderr + (EARLY_EXIT if outcome.exit_code == 0 and not completed else "")
        return Verdict(status, outcome.exit_code, stdout, stderr, outcome.duration_s)


def _classify(stderr: str) -> Status:
    """Status of a Java program that exited non-zero, from the uncaught exception JVM reports."""
    match = _UNCAUGHT.search(stderr)
    name = match.group(1) if match else ""
    if name == "java.lang.AssertionError":
        return Status.FAILURE
    if name == "java.lang.OutOfMemoryError" and "unable to create native thread" not in stderr:
        return Status.MEMORY_LIMIT
    if "Could not reserve enough space" in stderr or "Error occurred during initialization of VM" in stderr:
        return Status.MEMORY_LIMIT
    return Status.EXCEPTION
