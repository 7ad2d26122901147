"""`codequant agreement`: the serving agreement check on one model folder from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from codequant.errors import InputError
from codequant.option_checks import check_out_file
from codequant.option_checks import device as device_check


def agreement(
    model: Annotated[Path, typer.Option(help="model folder (a baseline or a quantized variant)")],
    benchmark: Annotated[str, typer.Option(help="benchmark name (codequant benchmarks list)")] = "humaneval",
    limit: Annotated[int, typer.Option(min=1, help="the first N problems")] = 5,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 128,
    server: Annotated[Literal["codequant", "vllm"], typer.Option(help="the server to check")] = "codequant",
    url: Annotated[str | None, typer.Option(help="check this running server instead of starting one")] = None,
    dtype: Annotated[Literal["auto", "float32", "float16", "bfloat16"], typer.Option()] = "auto",
    device: Annotated[
        str, typer.Option(help="cpu | cuda | cuda:N: where transformers runs", callback=device_check)
    ] = "cpu",
    execute: Annotated[bool, typer.Option(help="run both sides' completions for the pass@1 agreement")] = True,
    out: Annotated[Path | None, typer.Option(help="write the full result as JSON")] = None,
) -> None:
    """Compare a server's greedy completions with transformers' own generate on the same folder; exit 1 when
    they differ (the line names the first differing problem and token)."""
    from codequant.benchmarks import load_benchmark
    from codequant_orchestrator.agreement import check_agreement

    if not (model / "config.json").is_file():
        raise InputError(f"--model {model}: not a model folder (no config.json)")
    if out is not None:
        check_out_file(out)
    problems = load_benchmark(benchmark, limit=limit)
    result = check_agreement(
        str(model),
        problems,
        max_new_tokens=max_new_tokens,
        server=server,
        url=url,
        dtype=dtype,
        device=device or "cpu",
        execute=execute,
    )
    if out is not None:
        result.write(out)
    typer.echo(result.summary())
    if result.first_difference is not None:
        raise typer.Exit(1)
