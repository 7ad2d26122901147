"""Java compilation through a long-lived compile server (javax.tools in one warm JVM).

One javac process costs ~1.1 s per program on a small machine; the warm server compiles a
MultiPL-E program in ~50-70 ms. Each program is compiled in isolation (its own source and output
folders, only javatuples on the classpath) with annotation processing off, so compiling runs none
of the untrusted code. If the server cannot start, each program falls back to one javac process.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import select
import shutil
import subprocess
import threading
from importlib import resources
from pathlib import Path

from codequant import settings

log = logging.getLogger(__name__)
JAVA_SOURCES = ("CompileServer.java", "CqHarness.java")
SERVER_FLAGS = ["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx512m", "-XX:-UsePerfData"]


class CompileTimeout(RuntimeError):
    """Compiling one program took longer than its limit (the server is restarted)."""


def java_home() -> Path:
    """The JDK whose `java`/`javac` are on PATH."""
    javac = shutil.which("javac")
    if javac is None:
        raise FileNotFoundError("javac not found: install a JDK (Debian: default-jdk-headless)")
    return Path(os.path.realpath(javac)).parent.parent


def support_classes() -> Path:
    """Compile the server and the run harness once per JDK and source version; return their class folder."""
    texts = {name: (resources.files("codequant_executor") / "java" / name).read_text() for name in JAVA_SOURCES}
    digest = hashlib.sha256((str(java_home()) + "".join(texts.values())).encode()).hexdigest()[:16]
    folder = settings.cache_dir() / "java" / digest
    if all((folder / f"{name.removesuffix('.java')}.class").exists() for name in JAVA_SOURCES):
        return folder
    staging = folder.with_name(f"{digest}.tmp{os.getpid()}")
    staging.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (staging / name).write_text(text)
    subprocess.run(
        [
            str(java_home() / "bin" / "javac"),
            "-encoding",
            "UTF8",
            "-d",
            str(staging),
            *(str(staging / n) for n in JAVA_SOURCES),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    staging.chmod(0o755)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


class CompileServer:
    """A thread-safe client of one compile-server JVM, restarted when it dies or hangs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._broken = False

    def compile(self, source: Path, out_dir: Path, classpath: str, timeout_s: float) -> tuple[bool, str]:
        """Compile one file; returns (ok, diagnostics)."""
        with self._lock:
            if not self._broken:
                try:
                    return self._request(source, out_dir, classpath, timeout_s)
                except CompileTimeout:
                    raise
                except (OSError, RuntimeError) as exc:
                    log.warning("compile server failed (%s); using javac for this program", exc)
                    self._stop()
        return _javac(source, out_dir, classpath, timeout_s)

    def _request(self, source: Path, out_dir: Path, classpath: str, timeout_s: float) -> tuple[bool, str]:
        process = self._ensure()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(f"{source}\t{out_dir}\t{classpath}\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], timeout_s)
        if not ready:
            self._stop()
            raise CompileTimeout(f"compiling took longer than {timeout_s:.0f} s")
        line = process.stdout.readline()
        if not line:
            self._stop()
            raise RuntimeError("compile server exited")
        verdict, _, payload = line.rstrip("\n").partition("\t")
        return verdict == "OK", base64.b64decode(payload).decode("utf-8", "replace")

    def _ensure(self) -> subprocess.Popen[str]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        try:
            classes = support_classes()
        except (OSError, subprocess.SubprocessError) as exc:
            self._broken = True
            raise RuntimeError(f"cannot build the compile server: {exc}") from exc
        self._process = subprocess.Popen(
            [str(java_home() / "bin" / "java"), *SERVER_FLAGS, "-cp", str(classes), "CompileServer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        )
        assert self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], 60)
        if not ready or self._process.stdout.readline().strip() != "READY":
            self._stop()
            self._broken = True
            raise RuntimeError("compile server did not start")
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._stop()


def _javac(source: Path, out_dir: Path, classpath: str, timeout_s: float) -> tuple[bool, str]:
    try:
        result = subprocess.run(
            [
                str(java_home() / "bin" / "javac"),
                "-encoding",
                "UTF8",
                "-proc:none",
                "-implicit:none",
                "-nowarn",
                "-d",
                str(out_dir),
                "-cp",
                classpath,
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        raise CompileTimeout(f"javac took longer than {timeout_s:.0f} s") from None
    return result.returncode == 0, result.stderr
