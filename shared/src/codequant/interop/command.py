"""``codequant convert``: between codequant's JSONL, MultiPL-E's experiment folders and EvalPlus's samples."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from codequant.errors import InputError
from codequant.interop import evalplus, multiple
from codequant.interop.problems import ProblemLookup
from codequant.jsonl import read_jsonl_numbered, write_jsonl

FORMATS = ("jsonl", "multiple", "evalplus")
console = Console(highlight=False, soft_wrap=True, stderr=True)


def convert(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="IN...", help="JSONL files, MultiPL-E folders or files, EvalPlus samples or eval results"
        ),
    ],
    source: Annotated[str, typer.Option("--from", help="jsonl | multiple | evalplus")],
    target: Annotated[str, typer.Option("--to", help="jsonl | multiple | evalplus")],
    out: Annotated[Path, typer.Option("--out", help="file (jsonl, evalplus) or new folder (multiple)")],
    benchmark: Annotated[
        str | None,
        typer.Option(help="benchmark of records that name none (default: from MultiPL-E names, EvalPlus task ids)"),
    ] = None,
) -> None:
    """Import generations or results from MultiPL-E or EvalPlus, or export codequant's to them."""
    for option, value in (("--from", source), ("--to", target)):
        if value not in FORMATS:
            raise InputError(f"{option} must be one of {', '.join(FORMATS)}, got {value!r}")
    if out.resolve() in {path.resolve() for path in inputs}:
        raise InputError(f"--out {out}: is also an input")
    if target != "multiple" and out.is_dir():
        raise InputError(f"--out {out}: is a folder; --to {target} writes a file")
    lookup = ProblemLookup()
    if source == "multiple":
        located = multiple.read_experiments(inputs, benchmark)
    elif source == "evalplus":
        located = evalplus.read_samples(inputs, lookup, benchmark)
    else:
        located = [
            (f"{path}:{number}", {"benchmark": benchmark, **record} if benchmark else record)
            for path in inputs
            for number, record in read_jsonl_numbered(path)
        ]
    if target == "multiple":
        count = multiple.write_experiment(out, [(w, lookup.complete(r, w)) for w, r in located])
        what = "problem files"
    elif target == "evalplus":
        count = evalplus.write_samples(out, located, lookup)
        what = "samples"
    else:
        count = write_jsonl(out, (record for _, record in located))
        what = "records"
    console.print(f"{out}: {count} {what} from {len(located)} {source} record(s)", markup=False)
