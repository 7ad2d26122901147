"""The subcommand the serving service adds to `codequant`: serve."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.console import Console

from codequant.option_checks import device as device_check
from codequant.option_checks import model_path

console = Console(highlight=False, soft_wrap=True, stderr=True)


def serve(
    model: Annotated[str, typer.Option(help="model folder or Hugging Face hub id", callback=model_path())],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: any free one)", min=0, max=65535)] = 8080,
    dtype: Annotated[Literal["auto", "float32", "float16", "bfloat16"], typer.Option(help="weights' dtype")] = "auto",
    max_batch_size: Annotated[
        int, typer.Option(help="sequences decoded together (more samples wait their turn)", min=1)
    ] = 32,
    device: Annotated[str, typer.Option(help="cpu | cuda | cuda:N", callback=device_check)] = "cpu",
    model_id: Annotated[str | None, typer.Option(help="name served in /info and /v1/models")] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for generation (default: $OMP_NUM_THREADS or all cores)", min=1)
    ] = None,
) -> None:
    """Serve a model behind TGI's and OpenAI's HTTP APIs (AQLM folders included)."""
    import uvicorn

    from codequant_serving.engine import Engine
    from codequant_serving.loading import load_model
    from codequant_serving.server import create_app

    console.print(f"loading {model} ...", markup=False)
    loaded, tokenizer = load_model(model, dtype=dtype, device=device)
    engine = Engine(loaded, tokenizer, max_batch_size=max_batch_size, threads=threads)
    app = create_app(engine, model_id or model, dtype=dtype)
    console.print(f"serving {model_id or model} on http://{host}:{port}", markup=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register(app: typer.Typer) -> None:
    """Add this service's subcommands to the `codequant` command."""
    app.command()(serve)
