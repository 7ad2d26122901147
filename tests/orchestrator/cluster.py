"""A real Redis server and real Celery worker processes, each killable like in production (for the fault and
cancel tests): a private redis-server on a free port, so restarting it disturbs nothing else."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.cli import CLI


class Redis:
    """A redis-server of its own, keeping nothing on disk."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(
            lambda: (
                subprocess.run(
                    ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            ),
            20,
            "redis did not start",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.3)


class Cluster:
    """Workers for every queue and the orchestrator, as separate process groups."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.env = {**os.environ, "CODEQUANT_BROKER_URL": redis.url}
        self.workers: dict[str, subprocess.Popen] = {}
        self.orchestrator: subprocess.Popen | None = None

    def start_worker(self, queue: str) -> None:
        self.workers[queue] = subprocess.Popen(
            [*CLI, "worker", queue, "--concurrency", "1", "--loglevel", "WARNING"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill_worker(self, queue: str) -> None:
        kill_group(self.workers.pop(queue))

    def run(self, study: Path) -> subprocess.Popen:
        self.orchestrator = subprocess.Popen(
            [*CLI, "run", str(study), "--distributed", "--device", "cpu", "--no-progress"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        return self.orchestrator

    def close(self) -> None:
        for process in [*self.workers.values(), self.orchestrator]:
            if process is not None:
                kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
