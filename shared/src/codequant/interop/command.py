"""``codequant convert``: between codequant's JSONL, MultiPL-E's experiment folders and EvalPlus's samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from codequant.benchmarks import BENCHMARKS
from codequant.errors import InputError
from codequant.interop import evalplus, multiple
from codequant.interop.problems import ProblemLookup
from codequant.jsonl import read_input_records, write_jsonl
from codequant.option_checks import check_out_file

Format = Literal["jsonl", "multiple", "evalplus"]
console = Console(highlight=False, soft_wrap=True, stderr=True)


def convert(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="IN...",
            help="JSONL files, MultiPL-E folders or files, EvalPlus samples or eval results",
            exists=True,
        ),
    ],
    source: Annotated[Format, typer.Option("--from", help="the inputs' format")],
    target: Annotated[Format, typer.Option("--to", help="the output's format")],
    out: Annotated[Path, typer.Option("--out", help="file (jsonl, evalplus) or new folder (multiple)")],
    benchmark: Annotated[
        str | None,
        typer.Option(help="benchmark of records that name none (default: from MultiPL-E names, EvalPlus task ids)"),
    ] = None,
) -> None:
    """Import generations or results from MultiPL-E or EvalPlus, or export codequant's to them."""
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise InputError(f"--benchmark: unknown benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
    if out.resolve() in {path.resolve() for path in inputs}:
        raise InputError(f"--out {out}: is also an input")
    if target != "multiple" and out.is_dir():
        raise InputError(f"--out {out}: is a folder; --to {target} writes a file")
    if target != "multiple":
        check_out_file(out)
    lookup = ProblemLookup()
    inferred: set[str] = set()  # benchmarks the inputs did not name, chosen by their problem names or task ids
    if source == "multiple":
        located = multiple.read_experiments(inputs, benchmark, inferred)
    elif source == "evalplus":
        located = evalplus.read_samples(inputs, lookup, benchmark, inferred)
    else:
        located = [
            (f"{path}:{number}", {"benchmark": benchmark, **record} if benchmark else record)
            for path in inputs
            for number, record in read_input_records(path)
        ]
    if not located:
        raise InputError(f"no records in {', '.join(map(str, inputs))}")
    if target == "multiple":
        count = multiple.write_experiment(out, [(w, lookup.complete(r, w)) for w, r in located])
        what = "problem files"
    elif target == "evalplus":
        count = evalplus.write_samples(out, located, lookup)
        what = "samples"
    else:
        count = write_jsonl(out, (record for _, record in located))
        what = "records"
    for name in sorted(inferred):
        how = "MultiPL-E's problem names" if source == "multiple" else "EvalPlus's task ids"
        console.print(f"note: records read as benchmark {name}, from {how} (--benchmark to choose)", markup=False)
    console.print(f"{out}: {count} {what} from {len(located)} {source} record(s)", markup=False)
