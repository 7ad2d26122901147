"""The subcommand the serving service adds to `codequant`: serve."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True, stderr=True)


def serve(
    model: Annotated[str, typer.Option(help="model folder or Hugging Face hub id")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8080,
    dtype: Annotated[str, typer.Option(help="auto | float32 | float16 | bfloat16")] = "auto",
    max_batch_size: Annotated[int, typer.Option(help="sequences decoded together")] = 32,
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    model_id: Annotated[str | None, typer.Option(help="name served in /info and /v1/models")] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for generation (default: $OMP_NUM_THREADS or all cores)")
    ] = None,
) -> None:
    """Serve a model behind TGI's and OpenAI's HTTP APIs (AQLM folders included)."""
    import uvicorn

    from codequant_serving.engine import Engine
    from codequant_serving.loading import load_model
    from codequant_serving.server import create_app

    console.print(f"loading {model} ...", markup=False)
    loaded, tokenizer = load_model(model, dtype=dtype, device=device)
    if threads is not None and threads < 1:
        from codequant.errors import InputError

        raise InputError(f"--threads must be >= 1, got {threads}")
    engine = Engine(loaded, tokenizer, max_batch_size=max_batch_size, threads=threads)
    app = create_app(engine, model_id or model, dtype=dtype)
    console.print(f"serving {model_id or model} on http://{host}:{port}", markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(serve)
