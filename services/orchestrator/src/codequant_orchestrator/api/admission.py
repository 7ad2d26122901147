"""What the API checks before it stores a submitted study, so that a study it accepts can run and one it refuses
leaves nothing behind: valid YAML and schema, output confined to the output root, no store of its own, models
that can be had, and data for every benchmark. Every problem names its field and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from codequant.benchmarks import BenchmarkSet
from codequant.errors import CodequantError
from codequant.model_source import hub_model_problem
from codequant.study import Problem, Study, StudyError, parse_study, problem_at
from codequant_orchestrator.plan import Plan, plan_study

SOURCE = "study"


@dataclass(frozen=True)
class Admitted:
    """A study the API accepts: its text as sent, and its plan (output_dir resolved under the output root)."""

    text: str
    plan: Plan

    @property
    def study(self) -> Study:
        return self.plan.study


def admit(body: bytes, *, output_root: Path, data_dir: Path | None) -> Admitted:
    """Check a submitted study; raise StudyError with every problem found."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError([Problem(SOURCE, f"the study is not UTF-8 text (byte {exc.start})")]) from None
    study = parse_study(text, source=SOURCE)
    problems = [*_stored_elsewhere(study, text), *_unknown_models(study, text)]
    try:
        confined = confine(study, output_root, text)
    except StudyError as exc:
        problems += exc.details
        confined = study
    benchmarks = _benchmarks(confined, text, data_dir, problems)
    if problems:
        raise StudyError(problems)
    return Admitted(text=text, plan=plan_study(confined, benchmarks=benchmarks))


def output_folder(study: Study, root: Path, text: str | None = None) -> Path:
    """Where the study's output goes: ``root/output_dir`` (``root/<name>`` without one). An absolute output_dir,
    one with ``..``, or one that resolves outside ``root`` (through a symbolic link) is refused."""
    root = root.resolve()
    relative = PurePosixPath(study.output_dir if study.output_dir is not None else study.name)
    why = None
    if relative.is_absolute():
        why = "must be a path relative to the API's output root, not an absolute path"
    elif ".." in relative.parts:
        why = "must not contain '..' (it is a folder under the API's output root)"
    elif not relative.parts:
        why = "must name a folder under the API's output root, not the root itself"
    elif not (root / relative).resolve().is_relative_to(root):
        why = "resolves outside the API's output root"
    if why:
        raise StudyError([_problem(text, ["output_dir"], why)])
    return (root / relative).resolve()


def confine(study: Study, root: Path, text: str | None = None) -> Study:
    """The study with its output_dir made absolute under ``root`` (see output_folder)."""
    return study.model_copy(update={"output_dir": str(output_folder(study, root, text))})


def _stored_elsewhere(study: Study, text: str) -> list[Problem]:
    if study.store_url is None:
        return []
    message = "the API keeps every study in its own results store: remove store_url"
    return [_problem(text, ["store_url"], message)]


def _unknown_models(study: Study, text: str) -> list[Problem]:
    """Hub models that are neither cached here nor known to the hub (local paths are checked by the schema)."""
    problems = []
    for index, model in enumerate(study.models):
        if model.hub_id is not None:
            why = hub_model_problem(model.hub_id, model.revision)
            if why:
                problems.append(_problem(text, ["models", index, "hub_id"], why))
    return problems


def _benchmarks(study: Study, text: str, data_dir: Path | None, problems: list[Problem]) -> dict[str, BenchmarkSet]:
    """Each benchmark loaded as the plan loads it; one without data here (no file in the data folder, hub out of
    reach, unknown problems) or without problems adds a problem."""
    loaded: dict[str, BenchmarkSet] = {}
    for index, spec in enumerate(study.benchmarks):
        try:
            benchmark = spec.load(data_dir)
        except CodequantError as exc:
            first = str(exc).splitlines()[0]
            problems.append(_problem(text, ["benchmarks", index], f"benchmark {spec.name!r} cannot be loaded: {first}"))
            continue
        if not benchmark.problems:
            problems.append(_problem(text, ["benchmarks", index], f"benchmark {spec.name!r} has no problems"))
            continue
        loaded[spec.name] = benchmark
    return loaded


def _problem(text: str | None, loc: list[str | int], message: str) -> Problem:
    return problem_at(text or "", SOURCE, loc, message)
