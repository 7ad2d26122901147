"""CPU time per Java program: codequant (compile servers, fork servers, sandboxed runs, the executor itself) against
one javac + one ``java -ea`` per program (MultiPL-E's procedure), on executor_throughput.py's Java programs.

    .venv/bin/python benchmarks/java_cpu_per_program.py [--limit 120] [--reference 30]

CPU rather than wall time: on a machine shared with other work it hardly depends on the load. codequant's side is
counted by a cgroup v1 ``cpuacct`` group this process moves into (the sandboxed processes are not all its
children), from before the pool starts (compile servers included) to after it closes (the harness's archive is
dumped first if it is not there, uncounted); the reference's by
``wait4`` of its processes, on the first ``--reference`` programs. Needs root and a cgroup v1 cpuacct hierarchy.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from executor_throughput import java_programs, reference_java

from codequant.limits import Limits
from codequant_executor.api import ExecutorPool

CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def children_cpu_s() -> float:
    times = os.times()
    return times.children_user + times.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=120, help="codequant's programs")
    parser.add_argument("--reference", type=int, default=30, help="the reference's programs (the first ones)")
    args = parser.parse_args()
    group = CPUACCT / f"codequant-java-cpu-{os.getpid()}"
    group.mkdir()
    (group / "cgroup.procs").write_text(str(os.getpid()))
    usage = group / "cpuacct.usage"
    programs = java_programs()[: args.limit]
    limits = Limits(timeout_s=10.0, memory_mb=1024)
    warm = ExecutorPool(workers=2)
    warm.runner("java")  # the harness's class-data sharing archive, dumped on first use: not counted
    warm.close()
    start = int(usage.read_text())
    engine = ExecutorPool(workers=2)
    passed = sum(v.passed for v in engine.run_many([(p, "java") for p in programs], limits))
    engine.close()
    ours = (int(usage.read_text()) - start) / 1e9 / len(programs)
    before = children_cpu_s()
    for program in programs[: args.reference]:
        reference_java(program, limits.timeout_s)
    theirs = (children_cpu_s() - before) / args.reference
    print(f"codequant: {len(programs)} programs, {passed} pass, {ours * 1000:.1f} ms of CPU per program")
    print(f"one javac + one java per program: {args.reference} programs, {theirs * 1000:.1f} ms of CPU per program")
    print(f"CPU ratio {theirs / ours:.2f}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
    group.rmdir()


if __name__ == "__main__":
    main()
