"""Where one Java run's time goes: the JVM alone and the JVM under the security-manager harness, both started
the way codequant starts a run (same flags, class-data sharing archive and paths, the slot's fork server or
a fresh sandbox), and codequant's whole compile + run; one small program, one run at a time, wall time.

    .venv/bin/python benchmarks/java_run_cost.py [--runs 15] [--timeline]

``--timeline`` also prints, for one harness run, when (JVM uptime) a few landmark classes load: the harness's
main class, the program's class, the security manager's first lambda, the set-up's last class, and the
proof's output stream.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from codequant.limits import Limits
from codequant_executor.api import JVM_FLAGS, ExecutorPool
from codequant_executor.sandbox import PROOF_FD

PROGRAM = (
    "import java.util.*;\nclass P { public static void main(String[] a) {\n"
    " List<Integer> l = new ArrayList<>(); for (int i = 0; i < 100; i++) l.add(i); assert l.size() == 100; } }\n"
)

LANDMARKS = (
    "] CqHarness source",
    "] P source",
    "SecurityManager$$Lambda$3/",
    "java.util.Formatter source",
    "java.io.FileOutputStream$1 ",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--timeline", action="store_true", help="landmarks of one harness run")
    args = parser.parse_args()
    pool = ExecutorPool(workers=1)
    runner = pool.runner("java")
    work = runner.sandbox.workdir(runner.spool)
    try:
        (work / "classes").mkdir(mode=0o755)
        (work / "Program.java").write_text(PROGRAM)
        assert runner.compiler.compile(work / "Program.java", work / "classes", runner.jar_inside, 60).ok
        limits = Limits(10.0, 1024)
        slot = pool.run_slots[0]
        java = [runner.java, *JVM_FLAGS, *runner.sharing, "-Xmx768m", "-cp"]
        alone = [*java, f"/work/classes:{runner.jar_inside}", "P"]
        harness = [*java, runner.harness, "CqHarness", "/work/classes", runner.jar_inside, "P", PROOF_FD]

        def sandboxed(argv: list[str]) -> Callable[[], object]:
            if runner.servers is not None:
                return lambda: runner.servers.execute(
                    argv, limits, slot, b"0" * 32 + b"\n", runner.nproc, work / "classes"
                )
            return lambda: runner.sandboxed(argv, work, limits, slot, b"0" * 32 + b"\n")

        variants = {
            "JVM alone": sandboxed(alone),
            "JVM + CqHarness": sandboxed(harness),
            "codequant compile + run": lambda: runner.run(PROGRAM, limits, slot),
        }
        print(f"fork server: {runner.servers is not None}")
        if args.timeline and runner.servers is not None:
            logged = [*java[:-1], "-Xlog:class+load=info:stdout:uptime", "-cp", *harness[len(java) :]]
            big = Limits(10.0, 1024, max_output_bytes=10_000_000)
            outcome = runner.servers.execute(logged, big, slot, b"0" * 32 + b"\n", runner.nproc, work / "classes")
            for line in outcome.stdout.splitlines():
                if any(mark in line for mark in LANDMARKS):
                    print("  ", line[:110])
        for name, run in variants.items():
            assert run() is not None  # warm the page cache
            start = time.perf_counter()
            for _ in range(args.runs):
                run()
            print(f"{name:<28} wall {(time.perf_counter() - start) / args.runs * 1000:6.1f} ms per run")
    finally:
        runner.sandbox.cleanup(work)
        pool.close()


if __name__ == "__main__":
    main()
