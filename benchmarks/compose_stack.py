"""The compose deployment, measured: image build time and size, `docker compose up` to healthy, the small study's
wall time in compose vs the embedded runner, and execution throughput with 1, 2 and 3 executor containers.

    .venv/bin/python benchmarks/compose_stack.py [--cold] [--scales 1 2 3] [--chunk 16]
        [--concurrency N] [--attach ENV_FILE]

--cold first removes codequant's images, Docker's build cache and the wheelhouse (as on a fresh clone in CI).
The study is tests/deploy/test_compose_stack.py's small study (tiny model, fp32 + RTN 3/2-bit, 6 HumanEval and
3 McEval Java problems, n = 2), run through the HTTP API, then on the embedded runner on the host (the tiny
model built or cached there), one after the other. The throughput programs are hostile-free: HumanEval's and
McEval Java's canonical solutions and one mutant of each, sent as the orchestrator sends them (chunks of 16)
from inside the orchestrator container; each executor container runs `worker execute --concurrency 2`, as
compose.yaml deploys it (--concurrency: another number of processes, by a compose override file). Each scale
runs the programs twice and reports both passes (the first starts each worker's Java compile servers), and the CPU
the executor containers used meanwhile; every verdict must agree with the in-process run. --attach measures only
the throughput, on a stack a `Stack.create` env file describes, and leaves it running.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor_throughput import mutate

from codequant.benchmarks import load_benchmark
from codequant.limits import Limits
from codequant.model_source import resolve_model
from codequant_executor.api import execute_records
from tests.deploy.stack import COMPOSE_FILES, Stack, build_images, start_engine
from tests.deploy.test_compose_stack import SMALL, STUDY

REPO = Path(__file__).resolve().parents[1]

#: Runs inside the orchestrator container: sends the records (stdin) as execute tasks, times them to the end.
DRIVER = r"""
import json, sys, time
from celery.result import AsyncResult
from codequant.celery_app import create_app
from codequant.limits import Limits
from codequant.payloads import ExecuteRequest, ExecuteResult
from codequant.queues import TASK_NAMES, new_task_id

records, chunk, workers = json.load(sys.stdin), int(sys.argv[1]), int(sys.argv[2])
app = create_app()
deadline = time.monotonic() + 180
while sum(next(iter(r)).startswith("execute-") for r in app.control.ping(timeout=1.0) or []) < workers:
    if time.monotonic() > deadline:
        sys.exit("the executors did not answer")
limits = Limits().as_key()
passes = []
for _ in range(2):
    start = time.perf_counter()
    tasks = [
        app.send_task(
            TASK_NAMES["execute"],
            args=[ExecuteRequest(items=items, limits=limits).model_dump()],
            task_id=new_task_id("execute"),
        )
        for items in (records[i:i + chunk] for i in range(0, len(records), chunk))
    ]
    verdicts = {}
    for task in tasks:
        for outcome in ExecuteResult.model_validate(AsyncResult(task.id, app=app).get(timeout=1800)).outcomes:
            verdicts[outcome.completion_key] = outcome.passed
    passes.append({"seconds": time.perf_counter() - start, "verdicts": verdicts})
print(json.dumps(passes))
"""


def programs() -> list[dict]:
    """Canonical solutions and one mutant each: HumanEval (Python) and McEval Java, as execution items."""
    records = []
    for problem in load_benchmark("humaneval").problems + load_benchmark("mceval-java").problems:
        for kind, body in (("ok", problem.canonical_solution), ("mutant", mutate(problem.canonical_solution))):
            name = f"{problem.name}/{kind}"
            records.append(
                {
                    "name": name,
                    "language": problem.language,
                    "prompt": problem.prompt,
                    "completion": body,
                    "tests": problem.tests,
                    "completion_key": name,
                }
            )
    return records


def timed(label: str, function, *args):
    start = time.monotonic()
    value = function(*args)
    seconds = time.monotonic() - start
    print(f"{label}: {seconds:.0f} s", flush=True)
    return seconds, value


def cold_start() -> None:
    images = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "codequant/*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if images:
        subprocess.run(["docker", "image", "rm", "--force", *images], capture_output=True, check=True)
    subprocess.run(["docker", "builder", "prune", "--all", "--force"], capture_output=True, check=True)
    for wheel in (REPO / "docker" / "wheelhouse").iterdir():
        if wheel.name != "README.md":
            wheel.unlink()


def image_sizes() -> None:
    listing = subprocess.run(
        ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", "codequant/*"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print("images (each with its base layers):\n  " + listing.strip().replace("\n", "\n  "))
    df = subprocess.run(
        ["docker", "system", "df", "--format", "{{.Type}}: {{.Size}}"], capture_output=True, text=True, check=True
    )
    print(f"all images on the engine, shared layers counted once: {df.stdout.splitlines()[0]}")


def study_times(stack: Stack, folder: Path) -> None:
    # The tiny model where the tests keep it (built there once, else now).
    os.environ.setdefault("CODEQUANT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "codequant-test-cache"))
    model = Path(resolve_model({"builtin": {"kind": "tiny-code", "profile": "test", "seed": 0}}, progress=False))
    stack.put_folder("quantizer", model, f"/models/cache/models/{model.name}")
    study = STUDY.format(**SMALL)
    start = time.monotonic()
    progress = stack.follow(stack.submit(study), timeout=1800)
    in_compose = time.monotonic() - start
    (folder / "study.yaml").write_text(f"{study}output_dir: {folder / 'embedded'}\n")
    start = time.monotonic()
    cli = [sys.executable, "-c", "from codequant.cli import main; main()", "run", str(folder / "study.yaml")]
    subprocess.run([*cli, "--no-progress"], check=True, capture_output=True)
    embedded = time.monotonic() - start
    print(
        f"small study ({progress['status']}): compose {in_compose:.0f} s, embedded runner {embedded:.0f} s, "
        f"ratio {in_compose / embedded:.2f}",
        flush=True,
    )


def container_cpu_seconds(containers: list[str]) -> float:
    """CPU time the containers have used so far (cgroup v1 cpuacct or v2 cpu.stat, Docker's cgroupfs driver)."""
    total = 0.0
    for container in containers:
        for usage in glob.glob(f"/sys/fs/cgroup/cpuacct/docker/{container}*/cpuacct.usage"):
            total += int(Path(usage).read_text()) / 1e9
        for stat in glob.glob(f"/sys/fs/cgroup/docker/{container}*/cpu.stat"):
            total += int(Path(stat).read_text().split()[1]) / 1e6  # usage_usec
    return total


def host_cpu() -> tuple[int, int]:
    """(busy, all) jiffies of the host's CPUs so far."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def throughput(stack: Stack, scales: list[int], chunk: int) -> None:
    records = programs()
    reference = {r["name"]: r["passed"] for r in execute_records(records, Limits())}
    print(f"{len(records)} programs ({sum(r['language'] == 'java' for r in records)} Java), chunks of {chunk}")
    for scale in scales:
        stack.up("--scale", f"executor={scale}")
        containers = stack.containers("executor")
        used, (busy, every), start = container_cpu_seconds(containers), host_cpu(), time.monotonic()
        result = stack.exec("orchestrator", "python", "-c", DRIVER, str(chunk), str(scale), input=json.dumps(records))
        if result.returncode != 0:
            raise SystemExit(f"the driver failed: {result.stderr[-2000:]}")
        cores = (container_cpu_seconds(containers) - used) / (time.monotonic() - start)
        host_busy = (host_cpu()[0] - busy) / (host_cpu()[1] - every)
        first, second = json.loads(result.stdout)
        differ = sorted(name for name, passed in second["verdicts"].items() if reference[name] != passed)
        print(
            f"{scale} executor container(s): {len(records) / first['seconds']:.1f} programs/s first pass, "
            f"{len(records) / second['seconds']:.1f} programs/s second; {len(differ)} verdicts differ {differ}; "
            f"the executor containers used {cores:.2f} cores on average, the host's CPUs were {host_busy:.0%} busy; "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def with_concurrency(stack: Stack, folder: Path, concurrency: int) -> Stack:
    """The stack with a compose file (written to ``folder``) giving each executor ``concurrency`` processes."""
    command = ["worker", "execute", "--concurrency", str(concurrency)]
    path = folder / "executor-override.yaml"
    path.write_text(json.dumps({"services": {"executor": {"command": command}}}))  # JSON is YAML
    return dataclasses.replace(stack, files=[*stack.files, str(path)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="no images, build cache or wheelhouse to start with")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--concurrency", type=int, help="worker processes per executor container (default compose's)")
    parser.add_argument("--attach", type=Path, metavar="ENV_FILE", help="throughput only, on a running stack")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
    if args.attach:
        stack = Stack.attach(args.attach)
        if args.concurrency:
            stack = with_concurrency(stack, args.attach.parent, args.concurrency)
        throughput(stack, args.scales, args.chunk)
        return
    start_engine()
    if args.cold:
        cold_start()
    timed("make images" + (" (cold)" if args.cold else ""), build_images)
    image_sizes()
    folder = Path(tempfile.mkdtemp(prefix="codequant-bench-"))
    stack = Stack.create("codequant-bench", COMPOSE_FILES.read_text().strip().split(":"), folder)
    try:
        stack.down()
        print(f"docker compose up -d --wait: {stack.up(timeout=900):.0f} s", flush=True)
        study_times(stack, folder)
        if args.concurrency:
            stack = with_concurrency(stack, folder, args.concurrency)
        throughput(stack, args.scales, args.chunk)
    finally:
        stack.down()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
