"""Start `codequant serve` (installed by codequant-serving) as a subprocess for the duration of a block: how the
generator samples a variant it serves itself. Only the command line is shared with the server, no code."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

from codequant.errors import ServiceError

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(
    model: str,
    *,
    dtype: str = "auto",
    host: str = "127.0.0.1",
    port: int | None = None,
    max_batch_size: int = 32,
    startup_timeout_s: float = 300,
) -> Iterator[str]:
    """Serve ``model`` on a free port; yield its base URL; stop it afterwards (also on errors)."""
    port = port or free_port()
    command = [
        sys.executable,
        "-c",
        "from codequant.cli import main; main()",
        "serve",
        "--model",
        model,
        "--host",
        host,
        "--port",
        str(port),
        "--dtype",
        dtype,
        "--max-batch-size",
        str(max_batch_size),
    ]
    url = f"http://{host}:{port}"
    with tempfile.TemporaryFile(mode="w+b") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            preexec_fn=_die_with_parent,
        )
        try:
            _wait_healthy(process, log, url, model, startup_timeout_s)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _die_with_parent() -> None:
    """In the server's process: get SIGTERM when the process that started it dies, so a killed worker never
    leaves a model server holding memory (Linux prctl PR_SET_PDEATHSIG; a no-op elsewhere)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _wait_healthy(process: subprocess.Popen, log, url: str, model: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise ServiceError(
                f"`codequant serve --model {model}` exited with {process.returncode}: " + " | ".join(tail)
            )
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"`codequant serve --model {model}` did not become healthy in {timeout_s:.0f} s")
        time.sleep(0.25)
