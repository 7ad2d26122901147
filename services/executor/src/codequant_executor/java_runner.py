"""Java programs: compiled by the compile-server pool, run under the harness's security manager in the sandbox."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path

from codequant.limits import Limits
from codequant_executor.forkserver import ForkServers
from codequant_executor.java_compiler import HARNESS_JAR, CompilerPool, CompileTimeout, java_home, support_classes
from codequant_executor.outcome import Verdict
from codequant_executor.python_runner import interpreter
from codequant_executor.runner import HARNESS, Runner, RunnerSetup, after_compiling
from codequant_executor.sandbox import PROOF_FD, Mount, Outcome
from codequant_executor.status import Status

log = logging.getLogger(__name__)
JAVATUPLES_ENV = "CODEQUANT_JAVATUPLES"
_UNCAUGHT = re.compile(r'Exception in thread "main" ([\w.$]+)')
#: What the JDK prints when the harness installs its security manager (dropped from the program's stderr).
_SM_WARNING = re.compile(
    r"\AWARNING: A terminally deprecated method in java\.lang\.System has been called\n(?:WARNING: .*\n){3}"
)
_NATIVE_OOM = ("insufficient memory for the Java Runtime Environment", "Could not reserve enough space")
# Fast start-up: G1 (JDK 17 maps the base archive's heap objects, the boot module graph among them, only
# under G1: with the serial GC every run builds the module graph again, ~10 ms of CPU), one processor's worth
# of GC and JIT threads, client JIT only, no perf files in /tmp (class-data sharing: JavaRunner.sharing).
# The JIT compiles a method after 5x the usual calls or loop iterations: a typical test run ends before most
# of what the JDK runs at start-up is hot (~10 ms less CPU per run), a loop-heavy one pays ~3 ms more.
JVM_FLAGS = [
    "-ea",
    "-XX:+UseG1GC",
    "-XX:TieredStopAtLevel=1",
    "-XX:CompileThresholdScaling=5",
    "-XX:-UsePerfData",
    "-XX:ActiveProcessorCount=1",
    "-Xss8m",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:MaxDirectMemorySize=64m",
]
#: Processes (threads) of one run: the JVM starts a dozen of its own.
NPROC = 128
#: The JVM's own memory beside the heap (metaspace, code cache, stacks): the heap gets the rest of the limit.
JVM_OVERHEAD_MB = 256


def javatuples_jar() -> Path:
    """javatuples 1.2 (Debian: libjavatuples-java), needed by MultiPL-E's Java prompts."""
    return Path(os.environ.get(JAVATUPLES_ENV, "/usr/share/java/javatuples.jar")).resolve()


def linked_folders(home: Path) -> list[Path]:
    """Folders outside the JDK its symlinks point into (Debian links conf/ to /etc/java-<version>-openjdk):
    the sandbox shows them at their own path, or java.security cannot load (MessageDigest fails)."""
    targets = set()
    for path in home.rglob("*"):
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.is_relative_to(home) and not target.is_relative_to("/usr") and target.exists():
                targets.add(target if target.is_dir() else target.parent)
    return [t for t in sorted(targets) if not any(t != o and t.is_relative_to(o) for o in targets)]


def archive_name(home: Path) -> str:
    """The harness's class-data sharing archive's file name, keyed by what it depends on: the JDK's build
    (``release``), the JDK's base archive it is layered on (a dynamic archive made on another base is
    silently ignored, so a regenerated ``classes.jsa`` needs a new one), the training program and the flags."""
    parts = [(home / "release").read_text(errors="replace"), " ".join(JVM_FLAGS)]
    parts.append((resources.files("codequant_executor") / "java" / "CqTraining.java").read_text())
    for base in sorted((home / "lib").glob("*/classes*.jsa")):
        stat = base.stat()
        parts.append(f"{base} {stat.st_size} {stat.st_mtime_ns}")
    return f"harness-{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:16]}.jsa"


def tests_offset(program: str, tests_line: int) -> int:
    """Where the tests start, in UTF-16 units (javac's source positions), or 0 for a bare program."""
    if not tests_line:
        return 0
    head = "\n".join(program.split("\n")[: tests_line - 1]) + "\n"
    return len(head.encode("utf-16-le")) // 2


class JavaRunner(Runner):
    """Compiles through the compile-server pool, then runs ``CqHarness`` with the program's main class."""

    language = "java"
    nproc = NPROC
    memory = "data"
    proc = True
    commands = ("java",)

    def __init__(self, setup: RunnerSetup) -> None:
        """With ``setup.folder`` (private to the executor: the slots' fork-server folders), where fork servers can
        be used (``ForkServers.usable``), each run is a JVM executed by the slot's fork server instead of a fresh
        bubblewrap sandbox."""
        sandbox = setup.sandbox
        compile_slots = list(setup.compile_slots)
        self.home = java_home()
        self.jar = javatuples_jar()
        mounts = sandbox.mounts([self.home, support_classes(), self.jar.parent])
        super().__init__(setup, mounts + sandbox.mounts(linked_folders(self.home), same_path=True))
        self.java = f"{self.mounts[0].inside}/bin/java"
        self.harness = f"{self.mounts[1].inside}/{HARNESS_JAR}"
        self.jar_inside = f"{self.mounts[2].inside}/{self.jar.name}"
        self.spool = Path(tempfile.mkdtemp(prefix="cq-spool-"))
        self.spool.chmod(0o711)
        self.compiler = CompilerPool(sandbox, compile_slots, self.mounts, self.spool)
        self.sharing = ["-Xshare:auto"]
        archive = self.mounts[1].host / archive_name(self.home)
        if archive.exists() or self._dump_archive(archive, compile_slots[0]):
            self.sharing = [f"-XX:SharedArchiveFile={self.mounts[1].inside}/{archive.name}", "-Xshare:auto"]
        self.servers = None
        if setup.folder is not None and ForkServers.usable(sandbox):
            prefix, binary = interpreter()  # the fork server's own interpreter, beside the JDK
            mounts = [*self.mounts, Mount(prefix, "/opt/cq/python"), Mount(HARNESS, "/opt/cq/python-harness")]
            self.servers = ForkServers(
                sandbox,
                f"/opt/cq/python/{binary}",
                "/opt/cq/python-harness/zygote.py",
                mounts,
                setup.folder,
                name="java",
                proc=True,
            )

    def _dump_archive(self, archive: Path, slot: int) -> bool:
        """Run ``CqTraining`` once under the harness, in the sandbox, and keep the class-data sharing archive
        of what it loaded (with the harness's own classes, the security manager's and the lambda forms of the
        JDK's streams): every later run maps it instead of loading those classes (~10 ms each)."""
        workdir = self.sandbox.workdir(self.spool)
        dump = None
        try:
            (workdir / "classes").mkdir(mode=0o755)
            source = workdir / "CqTraining.java"
            source.write_text((resources.files("codequant_executor") / "java" / "CqTraining.java").read_text())
            dump = Path(tempfile.mkdtemp(prefix="cq-cds-"))  # directly in /tmp: its parents exist in the sandbox
            if self.sandbox.drops_uid(self.mounts):
                os.chown(dump, self.sandbox.uid(slot), self.sandbox.uid(slot))
            compiled = self.compiler.compile(source, workdir / "classes", self.jar_inside, 120.0)
            inside = self.sandbox.inside_workdir(workdir)
            argv = [self.java, *JVM_FLAGS, f"-XX:ArchiveClassesAtExit={dump}/{archive.name}", "-Xmx256m", "-cp"]
            argv += [self.harness, "CqHarness", f"{inside}/classes", self.jar_inside, "CqTraining", PROOF_FD]
            outcome = self.sandboxed(argv, workdir, Limits(120.0, 1024), slot, b"0" * 32 + b"\n", writable=[dump])
            if not (compiled.ok and outcome.exit_code == 0 and (dump / archive.name).exists()):
                log.warning("no class-data sharing archive for Java runs: %s", outcome.stderr[-500:])
                return False
            staging = archive.with_name(f"{archive.name}.{os.getpid()}")
            shutil.copyfile(dump / archive.name, staging)
            staging.chmod(0o444)
            staging.replace(archive)
            return True
        except (OSError, RuntimeError) as exc:
            log.warning("no class-data sharing archive for Java runs: %s", exc)
            return False
        finally:
            self.sandbox.cleanup(workdir)
            if dump is not None:
                self.sandbox.cleanup(dump)

    @property
    def source_name(self) -> str:
        return "Program.java"  # javac wants a public class's file named after it; ours have none

    def execute(self, program: str, limits: Limits, slot: int, tests_line: int, secret: bytes) -> Outcome | Verdict:
        with self.scratch(program, self.spool) as (workdir, _):
            (workdir / "classes").mkdir(mode=0o755)
            source = workdir / self.source_name
            try:
                compiled = self.compiler.compile(source, workdir / "classes", self.jar_inside, limits.timeout_s)
            except CompileTimeout as exc:
                return Verdict(Status.TIMEOUT, None, "", f"codequant: {exc}\n", 0.0)
            if not compiled.ok:
                diagnostics = compiled.diagnostics.replace(str(workdir) + "/", "")
                return Verdict(Status.SYNTAX_ERROR, 1, "", diagnostics, 0.0)
            left = after_compiling(limits, compiled.seconds)
            if isinstance(left, Verdict):
                return left
            limits = left
            main = self._main_class(compiled.mains, tests_offset(program, tests_line))
            if main is None:
                where = "in the tests" if tests_line else "in the program"
                return Verdict(
                    Status.SYNTAX_ERROR, None, "", f"codequant: no class declares static void main {where}\n", 0.0
                )
            inside = self.sandbox.inside_workdir(workdir)
            heap = max(32, limits.memory_mb - JVM_OVERHEAD_MB)
            argv = [self.java, *JVM_FLAGS, *self.sharing, f"-Xmx{heap}m", "-cp", self.harness, "CqHarness"]
            argv += [f"{inside}/classes", self.jar_inside, main, PROOF_FD]
            if self.servers is not None:
                outcome = self.servers.execute(argv, limits, slot, secret, NPROC, workdir / "classes")
            else:
                outcome = self.sandboxed(argv, workdir, limits, slot, secret)
        return replace(outcome, stderr=_SM_WARNING.sub("", outcome.stderr, count=1))

    def classify(self, outcome: Outcome) -> Status:
        return _classify(outcome.stderr)

    @staticmethod
    def _main_class(mains: list[tuple[str, int]], offset: int) -> str | None:
        """The class whose main the tests declare (the first at or after ``offset``); for a bare program, the
        first class with a main."""
        return next((name for name, start in mains if start >= offset), None)

    def close(self) -> None:
        if self.servers is not None:
            self.servers.close()
        self.compiler.close()
        self.sandbox.cleanup(self.spool)


def _classify(stderr: str) -> Status:
    """Status of a Java program that exited non-zero, from the uncaught exception JVM reports."""
    match = _UNCAUGHT.search(stderr)
    name = match.group(1) if match else ""
    if name == "java.lang.AssertionError":
        return Status.FAILURE
    if name == "java.lang.OutOfMemoryError" and "unable to create native thread" not in stderr:
        return Status.MEMORY_LIMIT
    if any(text in stderr for text in _NATIVE_OOM) or "Error occurred during initialization of VM" in stderr:
        return Status.MEMORY_LIMIT
    return Status.EXCEPTION
