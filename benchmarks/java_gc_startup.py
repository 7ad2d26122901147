"""CPU time of one Java run's start-up with the serial collector against G1, on the host (no sandbox), each with
its own harness archive dumped the way codequant dumps it: the JVM alone and under the ``CqHarness`` harness.

    .venv/bin/python benchmarks/java_gc_startup.py [--runs 15]

CPU (user + system, from ``wait4``) rather than wall time: on a shared machine it hardly depends on the load.
The variants take turns, run after run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from codequant_executor.api import HARNESS_JAR, JVM_FLAGS, java_home, javatuples_jar, support_classes

PROGRAM = (
    "import java.util.*;\nclass P { public static void main(String[] a) {\n"
    " List<Integer> l = new ArrayList<>(); for (int i = 0; i < 100; i++) l.add(i); assert l.size() == 100; } }\n"
)
SECRET = b"0" * 32 + b"\n"


def cpu_ms(argv: list[str]) -> float:
    """Run ``argv`` with the secret on stdin and the proof on stdout; its CPU time in ms (it must succeed)."""
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert process.stdin is not None
    process.stdin.write(SECRET)
    process.stdin.close()
    _, status, usage = os.wait4(process.pid, 0)
    assert status == 0, argv
    return (usage.ru_utime + usage.ru_stime) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    java, jar = str(java_home() / "bin" / "java"), str(javatuples_jar())
    harness = str(support_classes() / HARNESS_JAR)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        training = (resources.files("codequant_executor") / "java" / "CqTraining.java").read_text()
        (work / "CqTraining.java").write_text(training)
        (work / "P.java").write_text(PROGRAM)
        javac = [str(java_home() / "bin" / "javac"), "-cp", jar, "-d", str(work)]
        subprocess.run([*javac, str(work / "P.java"), str(work / "CqTraining.java")], check=True)
        gcs = {"serial": "-XX:+UseSerialGC", "G1": "-XX:+UseG1GC"}
        variants = {}
        for name, gc in gcs.items():
            flags = [java, *(gc if f.startswith("-XX:+Use") and f.endswith("GC") else f for f in JVM_FLAGS)]
            archive = work / f"{name}.jsa"
            dump = [*flags, f"-XX:ArchiveClassesAtExit={archive}", "-Xmx256m", "-cp", harness, "CqHarness"]
            cpu_ms([*dump, str(work), jar, "CqTraining", "1"])
            flags += [f"-XX:SharedArchiveFile={archive}", "-Xshare:auto", "-Xmx768m", "-cp"]
            variants[f"JVM alone, {name}"] = [*flags, f"{work}:{jar}", "P"]
            variants[f"JVM + CqHarness, {name}"] = [*flags, harness, "CqHarness", str(work), jar, "P", "1"]
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.runs):
            for name, argv in variants.items():
                times[name].append(cpu_ms(argv))
    for name, values in times.items():
        print(f"{name:<26} CPU median {statistics.median(values):6.1f} ms, min {min(values):6.1f} ms")


if __name__ == "__main__":
    main()
