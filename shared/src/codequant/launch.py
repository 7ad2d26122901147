"""Start a model server as a subprocess for the duration of a block: how the generator samples a variant it
serves itself. The server is `codequant serve` (installed by codequant-serving; serves AQLM and every format
transformers loads) or vLLM's OpenAI-compatible server (`vllm serve`, much faster on a GPU for the formats it
supports). Only command lines are shared with the servers, no code."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Literal

import httpx

from codequant.errors import ServiceError

PR_SET_PDEATHSIG = 1
#: Where the vLLM executable is (images install vLLM in its own virtualenv: it pins its own torch).
VLLM_ENV = "CODEQUANT_VLLM"

Server = Literal["codequant", "vllm"]


def vllm_executable() -> str | None:
    """The ``vllm`` command this worker can run: ``$CODEQUANT_VLLM``, else ``vllm`` on PATH, else None."""
    configured = os.environ.get(VLLM_ENV)
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("vllm")


def has_gpu() -> bool:
    """Whether an NVIDIA GPU is visible (the driver's tool is on PATH, as in GPU containers), without torch."""
    return shutil.which("nvidia-smi") is not None and os.environ.get("CUDA_VISIBLE_DEVICES", "x") != ""


def resolve_server(choice: str) -> Server:
    """The server for a self-served variant: ``auto`` takes vLLM where this worker has it and a GPU."""
    if choice == "codequant":
        return "codequant"
    if choice == "vllm":
        if vllm_executable() is None:
            raise ServiceError(f"serving.server is vllm, but this worker has no vLLM (install it or set ${VLLM_ENV})")
        return "vllm"
    if choice == "auto":
        return "vllm" if vllm_executable() is not None and has_gpu() else "codequant"
    raise ValueError(f"unknown server {choice!r}")


def server_command(
    server: Server, model: str, *, host: str, port: int, dtype: str = "auto", max_batch_size: int = 32
) -> list[str]:
    """The command line that serves ``model`` on ``host:port`` with ``server``."""
    if server == "vllm":
        executable = vllm_executable()
        if executable is None:
            raise ServiceError(f"no vLLM on this worker (install it or set ${VLLM_ENV})")
        return [
            executable, "serve", model, "--host", host, "--port", str(port), "--dtype", dtype,
            "--max-num-seqs", str(max_batch_size), "--seed", "0", "--disable-log-requests",
        ]  # fmt: skip
    return [
        sys.executable, "-c", "from codequant.cli import main; main()", "serve", "--model", model, "--host", host,
        "--port", str(port), "--dtype", dtype, "--max-batch-size", str(max_batch_size),
    ]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_server(
    model: str,
    *,
    server: Server = "codequant",
    dtype: str = "auto",
    host: str = "127.0.0.1",
    port: int | None = None,
    max_batch_size: int = 32,
    startup_timeout_s: float | None = None,
) -> Iterator[str]:
    """Serve ``model`` with ``server`` on a free port; yield its base URL; stop it afterwards (also on errors)."""
    port = port or free_port()
    command = server_command(server, model, host=host, port=port, dtype=dtype, max_batch_size=max_batch_size)
    # vLLM profiles memory and captures CUDA graphs before it answers /health: give it longer.
    timeout_s = startup_timeout_s or (900 if server == "vllm" else 300)
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
            _wait_healthy(process, log, url, command, timeout_s)
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


def _wait_healthy(process: subprocess.Popen, log, url: str, command: list[str], timeout_s: float) -> None:
    shown = " ".join(["codequant", *command[3:]] if command[1] == "-c" else command)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise ServiceError(f"`{shown}` exited with {process.returncode}: " + " | ".join(tail))
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise ServiceError(f"`{shown}` did not become healthy in {timeout_s:.0f} s")
        time.sleep(0.25)
