"""Subcommands the generator adds to `codequant`: generate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(highlight=False, soft_wrap=True, stderr=True)


def generate(
    endpoint: Annotated[str, typer.Option(help="server URL, e.g. http://127.0.0.1:8080")],
    benchmark: Annotated[str, typer.Option(help="benchmark name (codequant benchmarks list)")],
    out: Annotated[Path, typer.Option("--out", help="completions JSONL (appended; existing samples are kept)")],
    api: Annotated[str, typer.Option(help="tgi | openai | openai-chat")] = "tgi",
    model: Annotated[str | None, typer.Option(help="model name for the OpenAI API")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the endpoint's API key")] = None,
    header_env: Annotated[
        list[str] | None, typer.Option(help="extra header from the environment: NAME=VARIABLE (repeatable)")
    ] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="requests in flight to the endpoint at most (a hosted API's limit)")
    ] = None,
    problems: Annotated[str | None, typer.Option(help="comma-separated problem names (default: all)")] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems")] = None,
    exclude_humaneval_overlap: Annotated[bool, typer.Option(help="mceval-python: the paper's filter")] = False,
    n: Annotated[int, typer.Option(help="samples per problem")] = 20,
    temperature: Annotated[float, typer.Option(help="sampling temperature (0: greedy)")] = 0.2,
    top_p: Annotated[float, typer.Option(help="nucleus sampling")] = 0.95,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per completion")] = 1024,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
    concurrency: Annotated[int, typer.Option(help="concurrent requests")] = 4,
    retries: Annotated[int, typer.Option(help="attempts per request on connection errors, 5xx and 429")] = 6,
    prompt_mode: Annotated[
        str, typer.Option(help="completion | instruct (an instruction through the chat API; code extracted)")
    ] = "completion",
    response_prefix: Annotated[
        bool, typer.Option(help="instruct: the answer continues the prompt (off for endpoints that cannot)")
    ] = True,
) -> None:
    """Sample n completions per problem from a TGI / vLLM / OpenAI-compatible endpoint (resumable)."""
    from codequant.benchmarks import load_benchmark
    from codequant.errors import InputError
    from codequant.instruct import PROMPT_MODES
    from codequant.jsonl import JsonlAppender, read_jsonl
    from codequant_generator.api import Endpoint, generate_completions
    from codequant_generator.clients import APIS, Retry, client_for

    if api not in APIS:
        raise InputError(f"--api must be one of {', '.join(APIS)}, got {api!r}")
    if prompt_mode not in PROMPT_MODES:
        raise InputError(f"--prompt-mode must be one of {', '.join(PROMPT_MODES)}, got {prompt_mode!r}")
    if prompt_mode == "instruct" and api == "tgi":
        raise InputError("--prompt-mode instruct needs the chat API: --api openai or openai-chat")
    headers = {}
    for item in header_env or []:
        name, sep, variable = item.partition("=")
        if not sep or not name or not variable:
            raise InputError(f"--header-env must be NAME=VARIABLE, got {item!r}")
        headers[name] = variable
    if max_concurrency is not None and max_concurrency < 1:
        raise InputError(f"--max-concurrency must be >= 1, got {max_concurrency}")
    target = Endpoint(endpoint, api, model, api_key_env, headers, max_concurrency)  # type: ignore[arg-type]
    loaded = load_benchmark(
        benchmark,
        exclude_humaneval_overlap=exclude_humaneval_overlap,
        limit=limit,
        problems=problems.split(",") if problems else None,
    )
    retry = Retry(attempts=max(1, retries))
    client_for(target, retry).check()  # fail before any output when unreachable
    done = set()
    if out.exists():
        done = {(r.get("name"), r.get("sample")) for r in read_jsonl(out, allow_truncated_tail=True)}
    with (
        JsonlAppender(out) as appender,
        Progress(
            TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar,
    ):
        task = bar.add_task("generate", total=None)
        generate_completions(
            loaded.problems,
            target,
            n=n,
            temperature=temperature,
            top_p=top_p,  # type: ignore[arg-type]
            max_new_tokens=max_new_tokens,
            seed=seed,
            prompt_mode=prompt_mode,  # type: ignore[arg-type]
            response_prefix=response_prefix,
            concurrency=concurrency,
            skip=lambda name, sample: (name, sample) in done,
            on_record=appender.write,
            progress=lambda d, t: bar.update(task, completed=d, total=t),
            retry=retry,
        )
    console.print(
        f"{out}: {len(loaded.problems) * n} samples of {benchmark} ({len(done)} were already there)", markup=False
    )


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(generate)
