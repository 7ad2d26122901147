"""The subcommand this distribution adds to `codequant`: tiny-model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(highlight=False, soft_wrap=True, stderr=True)


def tiny_model(
    out: Annotated[Path, typer.Option("--out", help="folder to write the model into")],
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    profile: Annotated[str, typer.Option(help="full (demo) | test (smaller, for CI)")] = "full",
) -> None:
    """Build the tiny offline code model (a pipeline fixture trained on some benchmark solutions; cached)."""
    from codequant.errors import InputError
    from codequant_tiny.build import RECIPES, build_tiny_model

    if profile not in RECIPES:
        raise InputError(f"--profile must be one of {', '.join(RECIPES)}, got {profile!r}")
    path = build_tiny_model(out, seed, profile=profile)  # type: ignore[arg-type]
    console.print(f"tiny model in {path}", markup=False)


def register(app: typer.Typer) -> None:
    """Add this distribution's subcommand to the `codequant` command."""
    app.command("tiny-model")(tiny_model)
