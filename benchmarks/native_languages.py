"""C++ and JavaScript executor throughput: MultiPL-E-form programs through the sandboxed runners, one run.

C++ is measured with and without the precompiled <bits/stdc++.h> (``cpp_runner.support_folder``); every
program is distinct (a comment varies), the reference completion must pass and a wrong one must fail.

    .venv/bin/python benchmarks/native_languages.py [--workers 2] [--programs 20]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from codequant.benchmarks import load_benchmark
from codequant.limits import Limits
from codequant_executor.api import ExecutorPool

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "benchmarks"
COMPLETIONS = {
    "cpp": ("    return string.size();\n", "    return 1;\n"),
    "javascript": ("  return string.length;\n}\n", "  return 1;\n}\n"),
}


def measure(pool: ExecutorPool, language: str, count: int) -> tuple[float, int]:
    benchmark = "multiple-humaneval-cpp" if language == "cpp" else "multiple-humaneval-js"
    problem = load_benchmark(benchmark, data_dir=DATA).by_name()["HumanEval_23_strlen"]
    right, wrong = COMPLETIONS[language]
    jobs = []
    for i in range(count):
        completion = f"{'    ' if language == 'cpp' else '  '}// variant {i}\n" + (right if i % 2 == 0 else wrong)
        jobs.append((problem.program(completion), language, (problem.prompt + completion + "\n").count("\n") + 1))
    start = time.monotonic()
    verdicts = pool.run_many(jobs, Limits(timeout_s=30.0, memory_mb=512))
    elapsed = time.monotonic() - start
    expected = ["OK" if i % 2 == 0 else "Failure" for i in range(count)]
    wrong_verdicts = sum(str(v.status) != e for v, e in zip(verdicts, expected, strict=True))
    return count / elapsed, wrong_verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--programs", type=int, default=20)
    args = parser.parse_args()
    pool = ExecutorPool(workers=args.workers)
    try:
        pool.runner("cpp")  # builds the precompiled header once (cached), outside the measurement
        for language in ("javascript", "cpp"):
            rate, bad = measure(pool, language, args.programs)
            print(f"{language}: {rate:.2f} programs/s ({args.programs} programs, {bad} unexpected verdicts)")
        pool.runner("cpp").pch = None
        rate, bad = measure(pool, "cpp", args.programs)
        print(f"cpp without the precompiled header: {rate:.2f} programs/s ({bad} unexpected verdicts)")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
