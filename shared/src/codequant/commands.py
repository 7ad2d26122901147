"""Subcommands provided by the shared library: validate, benchmarks, convert, worker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from codequant.benchmarks import BENCHMARKS, load_benchmark
from codequant.errors import InputError, ServiceError
from codequant.interop.command import convert
from codequant.jsonl import write_jsonl
from codequant.study import Problem, StudyError, load_study
from codequant.worker_command import worker

console = Console(highlight=False, soft_wrap=True)


Source = Literal["auto", "local", "hub"]
DataDir = Annotated[Path | None, typer.Option(help="local JSONL folder", exists=True, file_okay=False)]


def validate(studies: Annotated[list[Path], typer.Argument(help="study YAML files")]) -> None:
    """Check study files; exit 2 with one line per problem (file:line: field: message)."""
    problems: list[Problem] = []
    for path in studies:
        try:
            study = load_study(path)
        except StudyError as exc:
            problems.extend(exc.details)
            continue
        for spec in study.benchmarks:
            if spec.path is not None:
                spec.load()  # a user's benchmark file: InputError naming file:line: field, exit 2
        variants = sum(len(m.variants) for m in study.models)
        console.print(
            f"{path}: ok ({len(study.models)} model(s), {variants} variant(s), "
            f"{len(study.benchmarks)} benchmark(s), n={study.sampling.n})",
            markup=False,
        )
    if problems:
        raise StudyError(problems)


benchmarks_app = typer.Typer(help="List and export benchmark problems.", no_args_is_help=True)


@benchmarks_app.command("list")
def list_benchmarks(
    data_dir: DataDir = None,
    source: Annotated[Source, typer.Option(help="where the data comes from")] = "auto",
) -> None:
    """Show every benchmark with its problem count, exclusions and repairs (or why its data is unavailable)."""
    unavailable: list[str] = []
    table = Table()
    for column in ("benchmark", "language", "problems", "excluded", "repaired", "license"):
        table.add_column(column, no_wrap=column != "license")
    for name, info in BENCHMARKS.items():
        try:
            loaded = load_benchmark(name, data_dir=data_dir, source=source)
        except (InputError, ServiceError) as exc:
            table.add_row(name, info.language, "-", "-", "-", info.license)
            unavailable.append(f"{name}: not available ({exc})")
            continue
        table.add_row(
            name,
            info.language,
            str(len(loaded.problems)),
            str(len(loaded.excluded)),
            str(len(loaded.repaired)),
            info.license,
        )
    console.print(table)
    for line in unavailable:
        console.print(line, markup=False)


@benchmarks_app.command("export")
def export_benchmark(
    name: Annotated[str, typer.Argument(help=f"one of {', '.join(BENCHMARKS)}")],
    out: Annotated[Path, typer.Option("--out", help="JSONL file to write", dir_okay=False)],
    data_dir: DataDir = None,
    source: Annotated[Source, typer.Option(help="where the data comes from")] = "auto",
    exclude_humaneval_overlap: Annotated[
        bool, typer.Option(help="mceval-python: the paper's 42-problem filter")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="first N problems", min=1)] = None,
) -> None:
    """Write a benchmark's problems as MultiPL-E-style JSONL records."""
    if name not in BENCHMARKS:
        raise InputError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    loaded = load_benchmark(
        name, data_dir=data_dir, source=source, exclude_humaneval_overlap=exclude_humaneval_overlap, limit=limit
    )
    count = write_jsonl(out, (p.to_record() for p in loaded.problems))
    console.print(f"{out}: {count} problems of {name}", markup=False)
    for problem, reason in {**loaded.excluded, **loaded.repaired}.items():
        console.print(f"  {'excluded' if problem in loaded.excluded else 'repaired'} {problem}: {reason}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the shared subcommands to the ``codequant`` command."""
    app.command()(validate)
    app.add_typer(benchmarks_app, name="benchmarks")
    app.command()(convert)
    app.command()(worker)
