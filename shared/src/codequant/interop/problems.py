"""Benchmark look-up for records that name their benchmark and problem but lack its tests."""

from __future__ import annotations

from typing import Any

from codequant.benchmarks import BENCHMARKS, BenchmarkSet, Problem, load_benchmark
from codequant.errors import CodequantError, InputError

#: The problem's fields a record gets when it lacks them (MultiPL-E names).
PROBLEM_FIELDS = ("language", "prompt", "tests", "stop_tokens")


class ProblemLookup:
    """Benchmarks loaded (and indexed) once each, by name; problems found by name or by upstream task id."""

    def __init__(self) -> None:
        self._sets: dict[str, BenchmarkSet] = {}
        self._by_name: dict[str, dict[str, Problem]] = {}
        self._by_task_id: dict[str, dict[str, Problem]] = {}

    def benchmark(self, name: Any, where: str) -> BenchmarkSet:
        """The named built-in benchmark; InputError naming ``where`` and the field when unknown or unloadable."""
        if not isinstance(name, str) or name not in BENCHMARKS:
            raise InputError(f"{where}: field 'benchmark': unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
        if name not in self._sets:
            try:
                loaded = load_benchmark(name)
            except CodequantError as exc:
                raise InputError(f"{where}: field 'benchmark': {name} cannot be loaded ({exc})") from None
            self._sets[name] = loaded
            self._by_name[name] = loaded.by_name()
            by_task_id: dict[str, Problem] = {}
            for problem in loaded.problems:
                if problem.source_id:
                    by_task_id.setdefault(problem.source_id, problem)  # the first, as a scan would find
            self._by_task_id[name] = by_task_id
        return self._sets[name]

    def problem(self, record: dict[str, Any], where: str) -> Problem:
        """The problem a record names through its ``benchmark`` and ``name`` fields."""
        loaded = self.benchmark(record.get("benchmark"), where)
        name = record.get("name")
        problem = self._by_name[record["benchmark"]].get(name) if isinstance(name, str) else None
        if problem is None:
            raise InputError(f"{where}: field 'name': no problem {record.get('name')!r} in {loaded.name}")
        return problem

    def by_task_id(self, benchmark: str, task_id: Any, where: str) -> Problem:
        """The problem whose upstream id (``HumanEval/0``, ``Mbpp/2``) is ``task_id``."""
        self.benchmark(benchmark, where)
        found = self._by_task_id[benchmark].get(task_id) if isinstance(task_id, str) else None
        if found is None:
            raise InputError(f"{where}: field 'task_id': no problem {task_id!r} in {benchmark}")
        return found

    def complete(self, record: dict[str, Any], where: str) -> dict[str, Any]:
        """``record`` with the problem's missing fields (tests, prompt, language, stop tokens) filled in from its
        benchmark; a record holding a whole ``program`` or its own tests, or naming no benchmark, is returned as
        it is."""
        if "program" in record or "tests" in record or "benchmark" not in record:
            return record
        problem = self.problem(record, where)
        filled = {field: getattr(problem, field) for field in PROBLEM_FIELDS if field not in record}
        return {**record, **filled}
