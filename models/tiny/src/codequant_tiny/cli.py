"""The subcommand this distribution adds to `codequant`: tiny-model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from codequant.errors import InputError

console = Console(highlight=False, soft_wrap=True, stderr=True)


def tiny_model(
    out: Annotated[Path, typer.Option("--out", help="folder to write the model into", file_okay=False)],
    seed: Annotated[int, typer.Option(help="training seed", min=0)] = 0,
    profile: Annotated[Literal["full", "test"], typer.Option(help="full (demo) | test (smaller, for CI)")] = "full",
    verify: Annotated[
        bool, typer.Option(help="train the shipped build (full, seed 0) again into --out and compare its hashes")
    ] = False,
) -> None:
    """Build the tiny offline code model (a pipeline fixture trained on some benchmark solutions).

    The full profile with seed 0 is shipped: it is copied, not trained (--verify trains it and checks that the
    weights are the shipped ones). Other builds are trained in (or copied from) the cache that studies use for
    `builtin: tiny-code`, so a model a study built is copied, not trained again, and a model built here serves
    later studies."""
    from codequant.model_source import builtin_cache_folder
    from codequant.option_checks import check_out_folder
    from codequant_tiny import shipped
    from codequant_tiny.build import build_tiny_model, copy_tiny_model, train_tiny_model

    check_out_folder(out)
    if verify:
        if not shipped.is_shipped(profile, seed):
            raise InputError(
                f"--verify: only the shipped build (profile {shipped.PROFILE}, seed {shipped.SEED}) has pinned hashes"
            )
        if out.exists() and any(out.iterdir()):
            raise InputError(f"--verify trains a fresh build: --out {out} must be empty or absent")
        train_tiny_model(out, seed, profile=profile)  # type: ignore[arg-type]
        differ = shipped.mismatches(out, shipped.VERIFIED)
        if differ:
            console.print(f"tiny model in {out}: {', '.join(differ)} differ from the shipped build", markup=False)
            raise typer.Exit(1)
        console.print(f"tiny model in {out}: the same bytes as the shipped build ({', '.join(shipped.VERIFIED)})")
        return
    cache = builtin_cache_folder("tiny-code", profile, seed)
    if shipped.is_shipped(profile, seed):
        cache = build_tiny_model(cache, seed, profile=profile)  # type: ignore[arg-type]  # the shipped build
    elif not copy_tiny_model(out, cache, seed, profile=profile):  # type: ignore[arg-type]  # else --out held it
        build_tiny_model(cache, seed, profile=profile)  # type: ignore[arg-type]  # a cache hit, or trained
    copy_tiny_model(cache, out, seed, profile=profile)  # type: ignore[arg-type]
    console.print(f"tiny model in {out} (also cached in {cache})", markup=False)


def register(app: typer.Typer) -> None:
    """Add this distribution's subcommand to the `codequant` command."""
    app.command("tiny-model")(tiny_model)
