"""A rich progress bar per quantized layer."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class LayerProgress:
    def __init__(self, total: int, *, enabled: bool) -> None:
        self._progress = Progress(
            TextColumn("quantize"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task = self._progress.add_task("", total=total)

    def advance(self, amount: int, description: str) -> None:
        self._progress.update(self._task, advance=amount, description=description)

    def __enter__(self) -> LayerProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
