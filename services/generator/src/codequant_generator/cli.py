"""Subcommands the generator adds to `codequant`: generate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from codequant.option_checks import above, check_out_file, fraction, generation_api
from codequant.study.methods import DEFAULT_REQUEST_TIMEOUT_S, DEFAULT_SAMPLES_PER_REQUEST

if TYPE_CHECKING:
    from codequant_generator.retry import RequestWatch

console = Console(highlight=False, soft_wrap=True, stderr=True)


class WaitingColumn(ProgressColumn):
    """What the run is waiting for, when requests go unanswered for a while (and the last retry)."""

    def __init__(self, watch: RequestWatch) -> None:
        super().__init__()
        self.watch = watch

    def render(self, task: Task) -> Text:
        return Text(self.watch.waiting(), style="yellow")


def generate(
    endpoint: Annotated[str, typer.Option(help="server URL, e.g. http://127.0.0.1:8080")],
    benchmark: Annotated[str, typer.Option(help="benchmark name (codequant benchmarks list)")],
    out: Annotated[Path, typer.Option("--out", help="completions JSONL (appended; existing samples are kept)")],
    api: Annotated[
        str,
        typer.Option(help="the endpoint's protocol, e.g. tgi or openai (the installed ones)", callback=generation_api),
    ] = "tgi",
    model: Annotated[str | None, typer.Option(help="model name for the OpenAI API")] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(help="environment variable holding the API key (default: the protocol's own, e.g. HF_TOKEN)"),
    ] = None,
    header_env: Annotated[
        list[str] | None, typer.Option(help="extra header from the environment: NAME=VARIABLE (repeatable)")
    ] = None,
    max_concurrency: Annotated[
        int | None, typer.Option(help="requests in flight to the endpoint at most (a hosted API's limit)", min=1)
    ] = None,
    problems: Annotated[str | None, typer.Option(help="comma-separated problem names (default: all)")] = None,
    limit: Annotated[int | None, typer.Option(help="first N problems", min=1)] = None,
    exclude_humaneval_overlap: Annotated[bool, typer.Option(help="mceval-python: the paper's filter")] = False,
    n: Annotated[int, typer.Option(help="samples per problem", min=1)] = 20,
    temperature: Annotated[float, typer.Option(help="sampling temperature (0: greedy)", min=0)] = 0.2,
    top_p: Annotated[float, typer.Option(help="nucleus sampling", callback=fraction)] = 0.95,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per completion", min=1)] = 1024,
    seed: Annotated[int, typer.Option(help="sampling seed", min=0)] = 0,
    concurrency: Annotated[int, typer.Option(help="concurrent requests", min=1)] = 4,
    retries: Annotated[
        int, typer.Option(help="attempts per request on connection errors, timeouts, 5xx and 429", min=1)
    ] = 6,
    request_timeout: Annotated[
        float, typer.Option(help="seconds to wait for an answer to one attempt of a request", callback=above(0))
    ] = DEFAULT_REQUEST_TIMEOUT_S,
    samples_per_request: Annotated[
        int, typer.Option(help="OpenAI APIs: at most this many of a problem's n per request (n is split)", min=1)
    ] = DEFAULT_SAMPLES_PER_REQUEST,
    prompt_mode: Annotated[
        Literal["completion", "instruct"],
        typer.Option(help="instruct: an instruction through the chat API, code extracted from the answer"),
    ] = "completion",
    response_prefix: Annotated[
        bool, typer.Option(help="instruct: the answer continues the prompt (off for endpoints that cannot)")
    ] = True,
) -> None:
    """Sample n completions per problem from a TGI / vLLM / OpenAI-compatible endpoint (resumable)."""
    from codequant.benchmarks import load_benchmark
    from codequant.errors import InputError
    from codequant.jsonl import JsonlAppender, read_jsonl
    from codequant.protocols import chat_api_names, get_api
    from codequant.study.methods import EndpointSpec
    from codequant_generator.api import generate_completions
    from codequant_generator.clients import client_for
    from codequant_generator.retry import RequestWatch, Retry

    if prompt_mode == "instruct" and not get_api(api).chat:
        raise InputError(f"--prompt-mode instruct needs the chat API: --api {' or '.join(chat_api_names())}")
    headers = {}
    for item in header_env or []:
        name, sep, variable = item.partition("=")
        if not sep or not name or not variable:
            raise InputError(f"--header-env must be NAME=VARIABLE, got {item!r}")
        headers[name] = variable
    wanted = [name.strip() for name in problems.split(",") if name.strip()] if problems is not None else None
    if wanted is not None and not wanted:
        raise InputError(f"--problems: no problem names in {problems!r}")
    check_out_file(out)
    target = EndpointSpec(
        url=endpoint,
        api=api,
        model=model,
        api_key_env=api_key_env,
        headers_env=headers,
        max_concurrency=max_concurrency,
        request_timeout_s=request_timeout,
        samples_per_request=samples_per_request,
    )
    target.credentials()  # a variable it names that is not set
    loaded = load_benchmark(
        benchmark, exclude_humaneval_overlap=exclude_humaneval_overlap, limit=limit, problems=wanted
    )
    if not loaded.problems:
        raise InputError(f"--benchmark {benchmark}: no problems to sample")
    retry = Retry(attempts=retries)
    watch = RequestWatch()
    done = set()
    if out.exists():
        done = {(r.get("name"), r.get("sample")) for r in read_jsonl(out, allow_truncated_tail=True)}
    with Progress(
        TextColumn("generate"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        WaitingColumn(watch),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log gets the summary line, not a bar's last frame
    ) as bar:
        task = bar.add_task("generate", total=None)
        client_for(target, retry, watch).check()  # fail before any output when unreachable
        with JsonlAppender(out) as appender:
            generate_completions(
                loaded.problems,
                target,
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_new_tokens=max_new_tokens,
                seed=seed,
                prompt_mode=prompt_mode,
                response_prefix=response_prefix,
                concurrency=concurrency,
                skip=lambda name, sample: (name, sample) in done,
                on_record=appender.write,
                progress=lambda d, t: bar.update(task, completed=d, total=t),
                retry=retry,
                watch=watch,
            )
    console.print(
        f"{out}: {len(loaded.problems) * n} samples of {benchmark} ({len(done)} were already there)", markup=False
    )


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(generate)
