"""The deployed executor: the compose Redis ACL lets a real execute worker do its job and nothing else, and a
worker without network isolation refuses to start."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import yaml

from tests.cli import CLI, codequant

REPO = Path(__file__).resolve().parents[2]
PASSWORDS = {"CODEQUANT_REDIS_PASSWORD": "admin-secret-1", "CODEQUANT_EXECUTOR_REDIS_PASSWORD": "executor-secret-2"}
WORKER = [*CLI, "worker", "execute", "--concurrency", "1"]


def compose_redis_arguments() -> list[str]:
    """The redis-server arguments compose.yaml ships, with test passwords in place of the variables."""
    command = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["redis"]["command"]
    out = []
    for argument in command[1:]:
        for name, value in PASSWORDS.items():
            argument = argument.replace(f"${{{name}:?set {name}}}", value)
        out.append(argument)
    return out


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A private redis-server with compose.yaml's users (the shared one on 6379 stays untouched)."""
    if not shutil.which("redis-server"):
        pytest.skip("needs redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("redis")
    arguments = [a for a in compose_redis_arguments() if a not in ("--appendonly", "yes")]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "", *arguments],
        stdout=subprocess.DEVNULL,
    )
    admin = redis.Redis(port=port, password=PASSWORDS["CODEQUANT_REDIS_PASSWORD"])
    for _ in range(100):
        try:
            admin.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield port
    server.terminate()
    server.wait()


def test_the_executor_user_runs_tasks_and_touches_nothing_else(acl_redis: int) -> None:
    from celery import Celery

    from codequant.limits import Limits
    from codequant.payloads import ExecuteRequest, ExecuteResult, ExecutionItem
    from codequant.queues import TASK_NAMES, new_task_id

    port = acl_redis
    url = f"redis://executor:{PASSWORDS['CODEQUANT_EXECUTOR_REDIS_PASSWORD']}@127.0.0.1:{port}/0"
    worker = subprocess.Popen(
        [*WORKER, "--broker", url, "--loglevel", "WARNING"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CODEQUANT_BROKER_URL": url},
    )
    try:
        admin_url = f"redis://:{PASSWORDS['CODEQUANT_REDIS_PASSWORD']}@127.0.0.1:{port}/0"
        client = Celery("codequant", broker=admin_url, backend=admin_url)
        client.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])
        item = ExecutionItem(
            name="a",
            language="python",
            prompt="def f():\n",
            completion="    return 1\n",
            tests="assert f() == 1\n",
            completion_key="c1",
        )
        request = ExecuteRequest(items=[item], limits=Limits(timeout_s=10).as_key())
        task = client.send_task(
            TASK_NAMES["execute"],
            args=[request.model_dump(mode="json")],
            queue="execute",
            task_id=new_task_id("execute"),
        )
        admin = redis.Redis(port=port, password=PASSWORDS["CODEQUANT_REDIS_PASSWORD"])
        try:
            result = ExecuteResult.model_validate(task.get(timeout=60))
            assert [(o.completion_key, o.status, o.passed) for o in result.outcomes] == [("c1", "OK", True)]
        except Exception:
            print("denied:", {(e["reason"], e["object"]) for e in admin.acl_log()}, file=sys.stderr)
            raise
        denied = [entry for entry in admin.acl_log() if entry.get("username") == "executor"]
        assert denied == [], denied  # the worker needed nothing the ACL does not grant
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    executor = redis.Redis(port=port, username="executor", password=PASSWORDS["CODEQUANT_EXECUTOR_REDIS_PASSWORD"])
    for attempt in (
        lambda: executor.lpush("generate", "work for another service"),
        lambda: executor.lpush("quantize", "x"),
        lambda: executor.lrange("report", 0, -1),
        lambda: executor.hset("unacked.generate", "forged", "{}"),  # a trusted worker would restore it
        lambda: executor.get("codequant-anything-else"),
        lambda: executor.get(f"celery-task-meta-{new_task_id('report')}"),  # another service's result
        lambda: executor.set(f"celery-task-meta-{new_task_id('generate')}", "forged"),
        lambda: executor.keys("*"),
        lambda: executor.scan(0),
        lambda: executor.config_get("*"),
        lambda: executor.flushall(),
        lambda: executor.acl_setuser("executor", enabled=True, commands=["+@all"]),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            attempt()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=port).ping()  # no anonymous access


def test_an_execute_worker_without_network_isolation_refuses_to_start(tmp_path: Path) -> None:
    """The container case: bubblewrap unusable (here: not on PATH). (The same as a non-root user, with the CLI:
    test_layers.py; this machine's interpreter lives under /root, out of a non-root worker's reach.)"""
    tools = tmp_path / "bin"
    tools.mkdir(parents=True)
    for tool in ("prlimit", "setpriv"):
        (tools / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(tools), "CODEQUANT_BROKER_URL": "redis://127.0.0.1:1/0"}
    env.pop("CODEQUANT_EXECUTOR_INSECURE", None)
    result = codequant("worker", "execute", "--concurrency", "1", env=env, timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "refusing to run untrusted code without network isolation" in result.stderr


def test_the_executor_container_gets_the_seccomp_profile_bubblewrap_needs() -> None:
    executor = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["executor"]
    profiles = [o.split("=", 1)[1] for o in executor["security_opt"] if o.startswith("seccomp=")]
    assert profiles == ["docker/executor-seccomp.json"]
    profile = json.loads((REPO / profiles[0]).read_text())
    denied = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" for name in rule["names"]}
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW" and "SCMP_ARCH_X86" not in profile["architectures"]
    assert {"unshare", "clone", "clone3", "setns", "mount", "umount2", "pivot_root"}.isdisjoint(denied)  # bubblewrap
    assert {"open_by_handle_at", "ptrace", "process_vm_readv", "bpf", "keyctl", "kexec_load", "init_module"} <= denied
    assert executor["environment"]["CODEQUANT_BROKER_URL"].startswith("redis://executor:")
