"""The executor container as deployed, attacked: the hostile-program suite (tests/executor/test_security.py) run by
the compose stack's executor containers, with compose's security options, as the orchestrator sends programs;
programs reach neither Redis, PostgreSQL, the orchestrator nor the internet; the executor's Redis user cannot
touch other services' keys; and an executor container missing one of its security options refuses, in one line,
to start.

Slow (it uses the compose stack of tests/deploy); skipped, with the engine's error, where no engine can start.
"""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from codequant.benchmarks import load_benchmark
from codequant.queues import new_task_id
from tests.deploy.stack import REPO, Stack
from tests.executor.conftest import FAST
from tests.executor.test_cpp_javascript import CPP, DATA, JS
from tests.executor.test_security import java_cases, java_program, python_cases

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

#: A world-writable file in each executor container's /tmp, outside every program's work folder.
CANARY = Path("/tmp/cq-canary/canary.txt")
#: Services a program must not reach from an executor container (the port each listens on).
SERVICES = {"redis": 6379, "postgres": 5432, "orchestrator": 8000}
#: Hosts outside the stack: an address (no DNS needed) and a name.
INTERNET = [("1.1.1.1", 443), ("pypi.org", 443)]
#: Outcomes of test_security.py's Python cases that differ, harmlessly, in the non-root container: the program's
#: parent is bubblewrap, PID 1 of its PID namespace, which ignores SIGKILL from inside it (as root on the host it is
#: the fork server, which dies); allocating 500 MB under the CI's load can outlast the 3 s timeout.
CONTAINER = {"kill_parent": {"OK"}, "memory_creep": {"Timeout"}}
#: Tries each (host, port) of argv[1] (JSON) for 2 s, in parallel; prints {"host:port": "open" or the error}.
REACH = r"""
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def reach(target):
    try:
        socket.create_connection(tuple(target), timeout=2).close()
        return "open"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
targets = json.loads(sys.argv[1])
with ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps({f"{h}:{p}": r for (h, p), r in zip(targets, pool.map(reach, targets))}))
"""
#: Run as the executor's Redis user (its own CODEQUANT_BROKER_URL); argv[1] is another service's key.
ACL_PROBE = r"""
import json, os, sys
import redis
client = redis.Redis.from_url(os.environ["CODEQUANT_BROKER_URL"])
other = sys.argv[1]
attempts = {
    "PING": lambda: client.ping(),
    "LLEN execute": lambda: client.llen("execute"),
    "KEYS *": lambda: client.keys("*"),
    "SCAN": lambda: client.scan(0),
    "GET another service's result": lambda: client.get(other),
    "SET another service's result": lambda: client.set(other, "forged"),
    "PUBLISH on its channel": lambda: client.publish(other, "forged"),
    "LPUSH generate": lambda: client.lpush("generate", "work for another service"),
    "LPUSH quantize": lambda: client.lpush("quantize", "x"),
    "LRANGE report": lambda: client.lrange("report", 0, -1),
    "HSET a trusted worker's unacked": lambda: client.hset("unacked.generate", "forged", "{}"),
    "ZADD to its index": lambda: client.zadd("unacked_index.generate", {"forged": 0}),
    "CONFIG GET": lambda: client.config_get("*"),
    "FLUSHALL": lambda: client.flushall(),
    "ACL SETUSER": lambda: client.acl_setuser("executor", enabled=True, commands=["+@all"]),
}
answers = {}
for name, attempt in attempts.items():
    try:
        attempt()
        answers[name] = "allowed"
    except redis.exceptions.NoPermissionError:
        answers[name] = "NOPERM"
    except redis.exceptions.RedisError as exc:
        answers[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps(answers))
"""


#: Run with the trusted services' Redis user: what Redis refused the executor's user so far ({key or channel: count}).
ACL_DENIALS = r"""
import json, os
import redis
log = redis.Redis.from_url(os.environ["CODEQUANT_BROKER_URL"], decode_responses=True).acl_log(1000)
print(json.dumps({e["object"]: e["count"] for e in log if e["username"] == "executor"}))
"""


def addresses(stack: Stack, service: str) -> list[str]:
    """The service's IP addresses on the stack's networks."""
    [container] = stack.containers(service)
    inspect = stack.docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", container).stdout
    return [network["IPAddress"] for network in json.loads(inspect).values()]


def item(name: str, language: str, prompt: str, completion: str = "", tests: str = "pass\n") -> dict[str, str]:
    """An execute task's item: ``tests`` starts where the harness must get to for the run to pass."""
    fields = {"prompt": prompt, "completion": completion, "tests": tests}
    return {"name": name, "language": language, **fields, "completion_key": name}


def java_item(name: str, program: str) -> dict[str, str]:
    """A whole Java program of test_security.py, its ``main`` as the tests."""
    split = program.index("    public static void main")
    return item(name, "java", program[:split], tests=program[split:])


def hostile_items(stack: Stack) -> dict[str, tuple[dict[str, str], set[str]]]:
    """Name -> (item, statuses it may end with): test_security.py's cases, every way out of the sandbox to the
    stack's services and the internet, and a correct C++ and JavaScript program (compiled binaries must run)."""
    cases: dict[str, tuple[dict[str, str], set[str]]] = {}
    for name, (program, expected) in python_cases(CANARY, 9).items():
        cases[f"python/{name}"] = (item(f"python/{name}", "python", program), expected | CONTAINER.get(name, set()))
    for name, (program, expected) in java_cases(CANARY, 9).items():
        cases[f"java/{name}"] = (java_item(f"java/{name}", program), expected)
    targets = [(host, port) for host, port in SERVICES.items()]
    targets += [(ip, port) for host, port in SERVICES.items() for ip in addresses(stack, host)] + INTERNET
    for host, port in targets:
        program = f"import socket\nsocket.create_connection(({host!r}, {port}), timeout=2)\n"
        name = f"python/reach {host}:{port}"
        cases[name] = (item(name, "python", program), {"Exception"})
    program = java_program(f'new Socket("{addresses(stack, "redis")[0]}", 6379).close();')
    cases["java/reach redis"] = (java_item("java/reach redis", program), {"Exception"})
    for language, solutions, benchmark in (("cpp", CPP, "multiple-humaneval-cpp"), ("js", JS, "multiple-humaneval-js")):
        problem = load_benchmark(benchmark, data_dir=DATA).by_name()["HumanEval_23_strlen"]
        solution = item(f"{language}/correct", problem.language, problem.prompt, solutions[problem.name], problem.tests)
        cases[f"{language}/correct"] = (solution, {"OK"})
    return cases


def in_executors(stack: Stack, script: str) -> list[str]:
    """A shell script's output in every executor container (as its user)."""
    return [stack.docker("exec", container, "sh", "-c", script).stdout for container in stack.containers("executor")]


def test_hostile_programs_in_the_executor_containers_harm_nothing(stack: Stack) -> None:
    in_executors(stack, f"mkdir -p {CANARY.parent} && echo canary-4f1e > {CANARY} && chmod 666 {CANARY}")
    cases = hostile_items(stack)
    names = list(cases)
    outcomes = dict(zip(names, stack.execute([cases[n][0] for n in names], FAST.as_key(), chunk=4), strict=True))
    wrong = {n: (o["status"], o["stderr"][-300:]) for n, o in outcomes.items() if o["status"] not in cases[n][1]}
    assert not wrong, wrong
    passed = {n for n, o in outcomes.items() if o["passed"]}
    harmless = {"python/setsid_daemon", "python/environment", "java/environment", "python/kill_parent"}
    assert passed - harmless == {"cpp/correct", "js/correct"}
    # Every connection failed in the sandbox's empty network namespace, by name or by address (Java's security
    # manager refuses the socket first).
    for name, outcome in outcomes.items():
        if "reach" in name:
            assert re.search(r"gaierror|Network is unreachable|AccessControlException", outcome["stderr"]), outcome
    # The secrets in the worker's environment never reach a program.
    environment = outcomes["python/environment"]["stdout"] + outcomes["java/environment"]["stdout"]
    assert stack.settings["CODEQUANT_EXECUTOR_REDIS_PASSWORD"] not in environment
    assert "CODEQUANT_BROKER_URL" not in environment
    # The containers are unharmed: the canary as it was, no program's process left, no zombie.
    assert set(in_executors(stack, f"cat {CANARY}")) == {"canary-4f1e\n"}
    assert "canary-4f1e" not in outcomes["python/read_outside"]["stdout"]
    leftovers = in_executors(stack, "grep -l -a -e 'slee[p]' /proc/[0-9]*/cmdline 2>/dev/null || true")  # not itself
    assert leftovers == [""] * len(leftovers), leftovers
    assert all(stack.zombies(container) == 0 for container in stack.containers("executor"))


def test_the_executor_container_reaches_only_redis_itself(stack: Stack) -> None:
    """Outside the sandbox too (the worker, or a program that escaped it): compose's internal network."""
    targets = [[host, port] for host, port in SERVICES.items()]
    targets += [[ip, port] for host, port in SERVICES.items() if host != "redis" for ip in addresses(stack, host)]
    targets += [list(target) for target in INTERNET]
    # A name Docker's DNS does not know takes 10 s to fail with the resolver's defaults: one try of 1 s.
    resolver = "RES_OPTIONS=timeout:1 attempts:1"
    result = stack.exec("executor", "env", resolver, "python", "-c", REACH, json.dumps(targets))
    assert result.returncode == 0, result.stderr
    reached = {target: answer for target, answer in json.loads(result.stdout).items() if answer == "open"}
    assert reached == {"redis:6379": "open"}, result.stdout


def acl_denials(stack: Stack) -> dict[str, int]:
    result = stack.exec("orchestrator", "python", "-c", ACL_DENIALS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_executor_redis_user_cannot_touch_other_services_keys(stack: Stack) -> None:
    # The executors need nothing their user may not do (Flower turns their task events on). Celery's revoke
    # broadcast (a cancelled study's tasks) makes every worker read each revoked task's state: refused to the
    # executors for other services' tasks, whose own workers mark them.
    [outcome] = stack.execute([item("ok", "python", "x = 1\n")], FAST.as_key())
    denied = {key: n for key, n in acl_denials(stack).items() if not re.match(r"celery-task-meta-(?!execute-)", key)}
    assert outcome["status"] == "OK" and denied == {}
    # A report task's result, written as the trusted services write theirs.
    other = f"celery-task-meta-{new_task_id('report')}"
    value = json.dumps({"status": "SUCCESS", "result": {"study_id": "compose-e2e"}})
    stack.redis("SET", other, value)
    lengths = {queue: stack.redis("LLEN", queue) for queue in ("generate", "quantize")}
    result = stack.exec("executor", "python", "-c", ACL_PROBE, other)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert answers.pop("PING") == answers.pop("LLEN execute") == "allowed", answers
    assert answers == dict.fromkeys(answers, "NOPERM"), answers
    assert stack.redis("GET", other) == value
    assert {queue: stack.redis("LLEN", queue) for queue in lengths} == lengths
    stack.redis("DEL", other)


EXECUTOR = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]["executor"]


def compose_security_options() -> list[str]:
    """The executor's security_opt in compose.yaml, the seccomp profile as an absolute path (for `docker run`)."""
    return [re.sub(r"^seccomp=(?!unconfined)", f"seccomp={REPO}/", option) for option in EXECUTOR["security_opt"]]


def start_worker(options: list[str]) -> subprocess.CompletedProcess[str]:
    """The executor image's worker, started as compose starts it but with these security options (no network)."""
    command = ["docker", "run", "--rm", "--network", "none", "--read-only", "--cap-drop", "ALL", "--init"]
    command += [f"--tmpfs={tmpfs}" for tmpfs in EXECUTOR["tmpfs"]] + ["--user", str(EXECUTOR["user"])]
    command += ["-e", "CODEQUANT_BROKER_URL=redis://executor:x@127.0.0.1:1/0"]
    command += [f"--security-opt={option}" for option in options]
    command += ["codequant/executor", "worker", "execute", "--concurrency", "1"]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def test_an_executor_without_one_of_its_security_options_refuses_to_start(stack: Stack) -> None:
    """Docker's default seccomp profile, or Docker's masked /proc: bubblewrap cannot build the namespaces."""
    dropped = ("seccomp", "systempaths")
    variants = [[o for o in compose_security_options() if not o.startswith(name)] for name in dropped]
    with ThreadPoolExecutor(len(variants)) as pool:
        results = dict(zip(dropped, pool.map(start_worker, variants), strict=True))
    for name, result in results.items():
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert result.returncode == 3 and len(lines) == 1, (name, result.stdout + result.stderr)
        assert lines[0].startswith("error: refusing to run untrusted code without network isolation ("), lines
