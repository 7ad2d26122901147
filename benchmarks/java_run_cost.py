"""Where one Java run's time goes: the JVM alone, the JVM with the security-manager harness, and codequant's
compile + sandboxed run, on one small program, one at a time.

    .venv/bin/python benchmarks/java_run_cost.py [--runs 15]

CPU is that of the child processes the script waited for (not counted for the sandboxed run, whose JVM is
a child of bubblewrap or of a fork server); wall time is per run.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import time
from collections.abc import Callable

from codequant.limits import Limits
from codequant_executor.java_runner import JVM_FLAGS
from codequant_executor.pool import ExecutorPool

PROGRAM = (
    "import java.util.*;\nclass P { public static void main(String[] a) {\n"
    " List<Integer> l = new ArrayList<>(); for (int i = 0; i < 100; i++) l.add(i); assert l.size() == 100; } }\n"
)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    pool = ExecutorPool(workers=1)
    runner = pool.java()
    work = runner.sandbox.workdir(runner.spool)
    try:
        (work / "classes").mkdir(mode=0o755)
        (work / "Program.java").write_text(PROGRAM)
        assert runner.compiler.compile(work / "Program.java", work / "classes", runner.jar_inside, 60).ok
        host = str(runner.mounts[1].host)
        sharing = [flag.replace(runner.mounts[1].inside, host) for flag in runner.sharing]
        java = [f"{runner.home}/bin/java", *JVM_FLAGS, *sharing, "-Xmx768m"]
        proof = os.open("/dev/null", os.O_WRONLY)
        harness = [*java, "-cp", f"{host}/harness.jar", "CqHarness", f"{work}/classes", str(runner.jar), "P"]
        variants: dict[str, Callable[[], object]] = {
            "JVM alone": lambda: subprocess.run(
                [*java, "-cp", f"{work}/classes:{runner.jar}", "P"], capture_output=True, check=True
            ),
            "JVM + CqHarness (no sandbox)": lambda: subprocess.run(
                [*harness, str(proof)], input=b"0" * 32 + b"\n", capture_output=True, check=True, pass_fds=(proof,)
            ),
            "codequant compile + sandboxed run": lambda: runner.run(PROGRAM, Limits(10.0, 1024), pool.run_slots[0]),
        }
        for name, run in variants.items():
            run()  # warm the page cache
            cpu, start = children_cpu(), time.perf_counter()
            for _ in range(args.runs):
                run()
            wall = (time.perf_counter() - start) / args.runs * 1000
            print(f"{name:<36} wall {wall:6.1f} ms  child CPU {(children_cpu() - cpu) / args.runs * 1000:6.1f} ms")
    finally:
        runner.sandbox.cleanup(work)
        pool.close()


if __name__ == "__main__":
    main()
