"""Executor throughput of one source tree, codequant's side only: to compare two versions back to back.

Runs the programs of ``benchmarks/executor_throughput.py`` (of ``TREE``: HumanEval canonical solutions and
mutants in Python; McEval canonical solutions and mutants and MultiPL-E prompts with stub and broken bodies in
Java) through that tree's executor (2 workers, 10 s timeout, 1024 MB) and prints programs per second. The
other version's executor must be the one importable, e.g. for ``main``::

    git archive main | tar -x -C /tmp/before
    CODEQUANT_DATA_DIR=$PWD/../shared/datasets \\
      PYTHONPATH=/tmp/before/services/executor/src:/tmp/before/shared/src \\
      .venv/bin/python benchmarks/executor_before_after.py /tmp/before before
    .venv/bin/python benchmarks/executor_before_after.py . after
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from codequant.limits import Limits


def executor_pool(workers: int) -> Any:
    """The pool of whichever executor version is importable (``Engine`` before it was renamed)."""
    try:
        return importlib.import_module("codequant_executor.pool").ExecutorPool(workers=workers)
    except ModuleNotFoundError:
        return importlib.import_module("codequant_executor.engine").Engine(workers=workers)


def main() -> None:
    tree, label = Path(sys.argv[1]).resolve(), sys.argv[2]
    spec = importlib.util.spec_from_file_location("throughput", tree / "benchmarks" / "executor_throughput.py")
    assert spec is not None and spec.loader is not None
    programs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(programs)
    limits = Limits(timeout_s=10.0, memory_mb=1024)
    pool = executor_pool(2)
    python = programs.python_programs()
    jobs = [(p["prompt"] + c + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n", "python") for p, c in python]
    start = time.perf_counter()
    passed = sum(v.passed for v in pool.run_many(jobs, limits))
    python_s = time.perf_counter() - start
    java = programs.java_programs()
    pool.runner("java")
    start = time.perf_counter()
    java_passed = sum(v.passed for v in pool.run_many([(p, "java") for p in java], limits))
    java_s = time.perf_counter() - start
    pool.close()
    print(
        f"{label}: python {len(python)} in {python_s:.2f} s = {len(python) / python_s:.1f}/s ({passed} pass); "
        f"java {len(java)} in {java_s:.2f} s = {len(java) / java_s:.1f}/s ({java_passed} pass)"
    )


if __name__ == "__main__":
    main()
