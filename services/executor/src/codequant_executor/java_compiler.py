"""Java compilation through a pool of long-lived compile servers (javax.tools in warm JVMs), each sandboxed.

One javac process costs ~1.1 s per program on a small machine; a warm server compiles a MultiPL-E program in
~50-70 ms. Each program is compiled in isolation (its own source and output folders, only javatuples on the
classpath) with annotation processing off, so compiling runs none of the untrusted code. javac itself can be
made to work for minutes by a few hundred bytes of nested generic expressions, so each server runs inside the
sandbox under a slot uid of its own (no network, read-only system, a data-segment limit, 256 processes), a
compilation gets the program's timeout (then its server is killed and restarted later, and the program is a
Timeout), and there is one server per worker so that a slow compilation holds up no other program.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import queue
import select
import shutil
import subprocess
import threading
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from codequant import settings
from codequant.text import decode_output
from codequant_executor.sandbox import Mount, Sandbox, SandboxFailure, kill_group
from codequant_executor.sandbox.process import POLL_S, stop_requested

log = logging.getLogger(__name__)
JAVA_SOURCES = ("CompileServer.java", "CqHarness.java")
#: The harness as a jar: class-data sharing archives only jar entries of the class path.
HARNESS_JAR = "harness.jar"
#: JavacTaskPool (reused javac contexts, CompileServer.java) is in a package jdk.compiler exports to the JDK only.
JAVAC_API = ["--add-exports", "jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED"]
SERVER_FLAGS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx512m", "-XX:-UsePerfData"]
SERVER_FLAGS += JAVAC_API
SERVER_DATA_MB = 1536
SERVER_START_S = 120.0


class CompileTimeout(RuntimeError):
    """Compiling one program took longer than its limit (its server is restarted)."""


@dataclass
class Compiled:
    """A compilation's result: success, javac's diagnostics, and (class, offset) of each top-level main."""

    ok: bool
    diagnostics: str
    mains: list[tuple[str, int]]
    seconds: float = 0.0  # how long compiling took (from the request to the answer: not the server's start)


def java_home() -> Path:
    """The JDK whose `java`/`javac` are on PATH."""
    javac = shutil.which("javac")
    if javac is None:
        raise FileNotFoundError("javac not found: install a JDK (Debian: default-jdk-headless)")
    return Path(os.path.realpath(javac)).parent.parent


def support_classes() -> Path:
    """Compile the server and the run harness once per JDK and source version; return their class folder."""
    texts = {name: (resources.files("codequant_executor") / "java" / name).read_text() for name in JAVA_SOURCES}
    layout = f"{HARNESS_JAR} v2"  # what the folder holds, beside the sources' text
    digest = hashlib.sha256((str(java_home()) + layout + "".join(texts.values())).encode()).hexdigest()[:16]
    folder = settings.cache_dir() / "java" / digest
    if (folder / HARNESS_JAR).exists() and (folder / "CompileServer.class").exists():
        return folder
    staging = folder.with_name(f"{digest}.tmp{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (staging / name).write_text(text)
    javac = [str(java_home() / "bin" / "javac"), "-encoding", "UTF8", "-nowarn", "-Xlint:-removal", *JAVAC_API]
    javac += ["-d", str(staging)]
    subprocess.run([*javac, *(str(staging / n) for n in JAVA_SOURCES)], check=True, capture_output=True, timeout=300)
    with zipfile.ZipFile(staging / HARNESS_JAR, "w") as jar:
        for name in sorted(p.name for p in staging.glob("CqHarness*.class")):
            jar.write(staging / name, name)
    staging.chmod(0o755)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


class CompileServer:
    """A client of one sandboxed compile-server JVM (not thread-safe: the pool hands it to one caller at a time)."""

    def __init__(self, sandbox: Sandbox, slot: int, mounts: list[Mount], spool: Path) -> None:
        self.sandbox, self.slot, self.mounts, self.spool = sandbox, slot, mounts, spool
        self._process: subprocess.Popen[bytes] | None = None

    def compile(self, source: Path, out_dir: Path, classpath: str, timeout_s: float, *, again: bool = True) -> Compiled:
        """Compile ``source`` into ``out_dir``. A server that dies on a program compiles it once more on a fresh
        server (``again``): a server can die for reasons of its own (memory pressure while a loaded host starts it,
        seen as a reference's "SyntaxError"), and only a program that kills two servers is held responsible."""
        process = self.ensure()
        assert process.stdin is not None and process.stdout is not None
        if self.sandbox.drops_uid(self.mounts):
            uid = self.sandbox.uid(self.slot)
            os.chown(out_dir, uid, uid)
        try:
            process.stdin.write(f"{source}\t{out_dir}\t{classpath}\n".encode())
            process.stdin.flush()
        except OSError:
            self.stop()
            raise SandboxFailure("the compile server exited") from None
        started = time.monotonic()
        deadline = started + timeout_s
        while not select.select([process.stdout], [], [], min(POLL_S, max(0.0, deadline - time.monotonic())))[0]:
            if stop_requested():
                self.stop()
                raise SandboxFailure("compilation stopped: the run was stopped")
            if time.monotonic() >= deadline:
                self.stop()
                raise CompileTimeout(f"compiling took longer than {timeout_s:g} s")
        line = process.stdout.readline().decode("utf-8", "replace")
        if not line:
            self.stop()  # javac exhausted the server's memory or crashed on this program
            if again:
                return self.compile(source, out_dir, classpath, timeout_s, again=False)
            crashed = "codequant: the compiler ran out of memory or crashed on this program\n"
            return Compiled(False, crashed, [], time.monotonic() - started)
        verdict, _, rest = line.rstrip("\n").partition("\t")
        diagnostics, _, mains = rest.partition("\t")
        found = []
        for entry in base64.b64decode(mains).decode().splitlines():
            name, _, offset = entry.rpartition("\t")
            found.append((name, int(offset)))
        diagnostics_text = decode_output(base64.b64decode(diagnostics))
        return Compiled(verdict == "OK", diagnostics_text, found, time.monotonic() - started)

    def ensure(self) -> subprocess.Popen[bytes]:
        """The running server process, started (and warmed up) if it is not running."""
        if self._process is not None and self._process.poll() is None:
            return self._process
        java = f"{self.mounts[0].inside}/bin/java"
        argv = [java, *SERVER_FLAGS, "-cp", self.mounts[1].inside, "CompileServer"]
        self._process = self.sandbox.spawn(
            argv, mounts=self.mounts, slot=self.slot, nproc=256, data_mb=SERVER_DATA_MB, writable=[self.spool]
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], SERVER_START_S)
        if not ready or self._process.stdout.readline().strip() != b"READY":
            self.stop()
            raise SandboxFailure("the compile server did not start")
        return self._process

    def stop(self) -> None:
        if self._process is not None:
            if self._process.stdin is not None:
                self._process.stdin.close()
            kill_group(self._process)  # the whole process group: with bubblewrap, its PID namespace
            self._process = None


class CompilerPool:
    """One compile server per slot, all started at once in the background; ``compile`` takes the first free
    one (a server that was killed starts again when it is next taken)."""

    def __init__(self, sandbox: Sandbox, slots: list[int], mounts: list[Mount], spool: Path) -> None:
        self._servers = [CompileServer(sandbox, slot, mounts, spool) for slot in slots]
        self._idle: queue.SimpleQueue[CompileServer] = queue.SimpleQueue()
        for server in self._servers:
            threading.Thread(target=self._start, args=(server,), daemon=True).start()

    def _start(self, server: CompileServer) -> None:
        try:
            server.ensure()
        except SandboxFailure as exc:
            log.warning("compile server: %s", exc)  # compile() tries again and reports it
        finally:
            self._idle.put(server)

    def compile(self, source: Path, out_dir: Path, classpath: str, timeout_s: float) -> Compiled:
        server = self._idle.get()
        try:
            return server.compile(source, out_dir, classpath, timeout_s)
        finally:
            self._idle.put(server)

    def close(self) -> None:
        for server in self._servers:
            server.stop()
