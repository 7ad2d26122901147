"""A running codequant compose stack, for tests: the engine, the images, `docker compose up`, and ways in.

``Stack`` wraps one compose project (its own name, env file, API port on 127.0.0.1), so tests can run a
command in a service's container, reach the HTTP API with the bearer token, run programs on the executor
containers as the orchestrator sends them, query the PostgreSQL store, and stop, kill or restart containers.
``start_stack`` brings one up from `make images`' output.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
#: Where `make images` (scripts/build-images.sh) writes the COMPOSE_FILE list it built the images for.
COMPOSE_FILES = REPO / "build" / "compose-files"


#: Runs in the orchestrator container: execution items (stdin, JSON) sent as execute tasks of ``argv[1]`` items each,
#: their outcomes printed in input order (ExecutionOutcome fields).
EXECUTE_DRIVER = r"""
import json, sys
from codequant.celery_app import create_app
from codequant.payloads import ExecuteRequest, ExecuteResult
from codequant.queues import TASK_NAMES, new_task_id

request, chunk = json.load(sys.stdin), int(sys.argv[1])
app, items = create_app(), request["items"]
tasks = [
    app.send_task(
        TASK_NAMES["execute"],
        args=[ExecuteRequest(items=items[i : i + chunk], limits=request["limits"]).model_dump(mode="json")],
        task_id=new_task_id("execute"),
    )
    for i in range(0, len(items), chunk)
]
outcomes = []
for task in tasks:
    outcomes += ExecuteResult.model_validate(task.get(timeout=float(sys.argv[2]))).model_dump()["outcomes"]
print(json.dumps(outcomes))
"""


class EngineUnavailable(Exception):
    """No Docker engine could be started here; the message is the engine's own error."""


def start_engine(script: Path = REPO / "scripts" / "docker-engine.sh") -> None:
    """Install and start the engine as CI does (scripts/docker-engine.sh, idempotent); EngineUnavailable with
    the script's own error when it cannot."""
    if shutil.which("bash") is None:
        raise EngineUnavailable("bash is missing")
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise EngineUnavailable((result.stderr or result.stdout).strip() or f"exit code {result.returncode}")


def build_images() -> list[str]:
    """`make images`' script; returns the compose files the images were built for."""
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-images.sh")], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise AssertionError(f"make images failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return COMPOSE_FILES.read_text().strip().split(":")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Stack:
    """One compose project of codequant, driven through `docker compose`."""

    project: str
    files: Sequence[str]
    env_file: Path
    api_port: int
    token: str
    settings: dict[str, str]
    up_seconds: float = 0.0
    _client: httpx.Client | None = field(default=None, repr=False)

    @classmethod
    def create(cls, project: str, files: Sequence[str], folder: Path) -> Stack:
        """A stack with fresh secrets (Redis passwords, API token) in an env file under ``folder``."""
        token = secrets.token_urlsafe(24)
        port = free_port()
        env = {
            "CODEQUANT_REDIS_PASSWORD": secrets.token_urlsafe(18),
            "CODEQUANT_EXECUTOR_REDIS_PASSWORD": secrets.token_urlsafe(18),
            "CODEQUANT_API_TOKEN": token,
            "CODEQUANT_API_ADDRESS": "127.0.0.1",
            "CODEQUANT_API_PORT": str(port),
            "CODEQUANT_FLOWER_PORT": str(free_port()),
            "CODEQUANT_PIP_OFFLINE": "--no-index" if "compose.offline.yaml" in files else "",
            "CODEQUANT_DATASETS": str(REPO.parent / "shared" / "datasets"),
        }
        env_file = folder / f"{project}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        env_file.chmod(0o600)
        return cls(project, list(files), env_file, port, token, env)

    @classmethod
    def attach(cls, env_file: Path) -> Stack:
        """The running stack a `Stack.create` env file describes (project: the file's stem)."""
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        files = COMPOSE_FILES.read_text().strip().split(":")
        port = int(settings["CODEQUANT_API_PORT"])
        return cls(env_file.stem, files, env_file, port, settings["CODEQUANT_API_TOKEN"], settings)

    # -- docker compose ----------------------------------------------------------------------------------------
    def compose(
        self, *args: str, check: bool = True, timeout: float = 600, input: str | bytes | None = None
    ) -> subprocess.CompletedProcess[Any]:
        """``docker compose ARGS`` for this project; with ``check`` a failure raises with its output."""
        command = ["docker", "compose", "-p", self.project, "--env-file", str(self.env_file)]
        for name in self.files:
            command += ["-f", str(REPO / name)]
        # The env file's values, not variables of the same name this process may have, configure the stack.
        env = {k: v for k, v in os.environ.items() if k not in self.settings and not k.startswith("COMPOSE_")}
        text = not isinstance(input, bytes)
        result = subprocess.run(
            [*command, *args], capture_output=True, text=text, timeout=timeout, input=input, cwd=REPO, env=env
        )
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)} failed: {result.stderr!s:.4000}")
        return result

    def up(self, *args: str, timeout: float = 600) -> float:
        """``docker compose up -d --wait ARGS``: returns the seconds until every service was healthy/running."""
        start = time.monotonic()
        first = self.compose("up", "-d", "--wait", *args, timeout=timeout, check=False)
        # Docker 20.10: containers created at once that share a new named volume can race to populate it
        # ("failed to mkdir .../_data/hf: file exists"); the volume is there the second time.
        if first.returncode != 0 and "file exists" not in first.stderr:
            raise AssertionError(f"docker compose up -d --wait failed: {first.stderr!s:.4000}")
        if first.returncode != 0:
            self.compose("up", "-d", "--wait", *args, timeout=timeout)
        return time.monotonic() - start

    def down(self) -> None:
        """Stop and remove the containers, networks and volumes."""
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False, timeout=300)

    def exec(
        self, service: str, *command: str, user: str | None = None, index: int = 1, input: str | bytes | None = None
    ) -> subprocess.CompletedProcess[Any]:
        """Run ``command`` in a service's container (replica ``index``); returns the finished process."""
        options = ["-T", "--index", str(index)] + (["--user", user] if user else [])
        return self.compose("exec", *options, service, *command, check=False, input=input)

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers."""
        out = self.compose("ps", "--quiet", "--status", "running", service).stdout
        return out.split()

    def docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` (on one container, say); a failure raises with its output."""
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr:.4000}")
        return result

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False).stdout

    def worker_queues(self) -> dict[str, int]:
        """Queue -> how many Celery workers consuming it answer a ping (asked from the orchestrator container)."""
        ping = (
            "import json; from codequant.celery_app import create_app; "
            "print(json.dumps([next(iter(r)) for r in create_app().control.ping(timeout=2.0) or []]))"
        )
        result = self.exec("orchestrator", "python", "-c", ping)
        if result.returncode != 0:
            raise AssertionError(f"pinging the workers failed: {result.stderr[-2000:]}")
        queues: dict[str, int] = {}
        for hostname in json.loads(result.stdout):  # codequant worker names them QUEUE-PID@HOST
            queue = hostname.split("@")[0].rsplit("-", 1)[0]
            queues[queue] = queues.get(queue, 0) + 1
        return queues

    def wait_for_workers(self, expected: dict[str, int], timeout: float = 180) -> None:
        """Until at least ``expected[queue]`` workers answer on each queue; else fail with their logs."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.worker_queues()
            if all(found.get(queue, 0) >= count for queue, count in expected.items()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"workers answering: {found}, wanted {expected}\n{self.diagnosis()}")
            time.sleep(2)

    def diagnosis(self, lines: int = 25) -> str:
        """`docker compose ps` and the end of every service's log, for a failing assertion."""
        parts = [self.compose("ps", "--all", check=False).stdout]
        services = self.compose("config", "--services", check=False).stdout.split()
        for service in services:
            parts.append(f"--- {service}\n" + "\n".join(self.logs(service).splitlines()[-lines:]))
        return "\n".join(parts)

    def zombies(self, container: str) -> int:
        """Exited processes nobody reaped in a container (each holds a pid of its pids_limit)."""
        count = (
            "import glob\n"
            "def state(path):\n"
            "    try:\n"
            "        return open(path).read().rsplit(')', 1)[1].split()[0]\n"
            "    except OSError:\n"
            "        return ''\n"
            "print(sum(state(p) == 'Z' for p in glob.glob('/proc/[0-9]*/stat')))"
        )
        return int(self.docker("exec", container, "python", "-c", count).stdout)

    # -- the HTTP API ------------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the orchestrator's API with ``Authorization: Bearer <the stack's token>``."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
            )
        return self._client.request(method, path, **kwargs)

    def submit(self, study_yaml: str) -> str:
        """POST a study (YAML) to the API; returns its id (202 expected)."""
        response = self.api("POST", "/studies", content=study_yaml, headers={"Content-Type": "application/yaml"})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def follow(
        self,
        study_id: str,
        *,
        timeout: float,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        until: tuple[str, ...] = ("done", "failed"),
    ) -> dict[str, Any]:
        """Poll a study's progress until its status is one of ``until``; ``on_progress`` sees every reading."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api("GET", f"/studies/{study_id}/progress")
            if response.status_code == 200:
                progress = response.json()
                if on_progress is not None:
                    on_progress(progress)
                if progress["status"] in until:
                    return progress
            time.sleep(1)
        raise AssertionError(f"study {study_id} did not finish in {timeout:.0f} s:\n{self.diagnosis()}")

    # -- the deployed executors ---------------------------------------------------------------------------------
    def execute(
        self, items: list[dict[str, Any]], limits: dict[str, Any], *, chunk: int = 4, timeout: float = 600
    ) -> list[dict[str, Any]]:
        """Run execution items (ExecutionItem fields) on the executor containers, as the orchestrator sends them:
        execute tasks of ``chunk`` items from inside the orchestrator container; the outcomes in input order."""
        request = json.dumps({"items": items, "limits": limits})
        result = self.exec("orchestrator", "python", "-c", EXECUTE_DRIVER, str(chunk), str(timeout), input=request)
        if result.returncode != 0:
            raise AssertionError(f"the execute driver failed: {result.stderr[-3000:]}\n{self.diagnosis()}")
        return json.loads(result.stdout)

    # -- the results store (PostgreSQL in the stack) -----------------------------------------------------------
    def sql(self, query: str) -> list[list[str]]:
        """Rows of ``query`` run by psql inside the postgres container (each field as text)."""
        result = self.exec("postgres", "psql", "-U", "codequant", "-d", "codequant", "-AtX", "-F", "\t", "-c", query)
        if result.returncode != 0:
            raise AssertionError(f"psql failed: {result.stderr}")
        return [line.split("\t") for line in result.stdout.splitlines()]

    def count(self, table: str, where: str = "TRUE") -> int:
        """Rows of a store table matching a SQL condition."""
        return int(self.sql(f"SELECT count(*) FROM {table} WHERE {where}")[0][0])

    def redis(self, *command: str) -> str:
        """A Redis command as the trusted `default` user (redis-cli in the redis container)."""
        result = self.exec("redis", "redis-cli", "--no-auth-warning", *command)
        if result.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(command)} failed: {result.stderr}")
        return result.stdout.strip()

    # -- artifacts ---------------------------------------------------------------------------------------------
    def put_folder(self, service: str, source: Path, destination: str) -> None:
        """Copy a host folder into a service's container as the image's user (a tar stream through exec)."""
        archive = subprocess.run(["tar", "-C", str(source), "-c", "."], capture_output=True, check=True).stdout
        result = self.exec(service, "sh", "-c", f'mkdir -p "{destination}" && tar -C "{destination}" -x', input=archive)
        if result.returncode != 0:
            raise AssertionError(f"copying {source} into {service}:{destination} failed: {result.stderr!r}")
