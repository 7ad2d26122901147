"""Progress of a study per stage: rich bars in a terminal, silent elsewhere."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from codequant_orchestrator.plan import STAGES


class StageProgress:
    """One progress bar per stage (quantize, generate, execute, report)."""

    def __init__(self, totals: dict[str, int], *, console: Console | None = None, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            disable=not enabled,
        )
        self._tasks = {stage: self._progress.add_task(stage, total=totals.get(stage, 0), detail="") for stage in STAGES}

    def advance(self, stage: str, amount: int = 1) -> None:
        if amount:
            self._progress.advance(self._tasks[stage], amount)

    def detail(self, stage: str, text: str) -> None:
        """What the stage is doing now (shown after its bar), e.g. the variant being quantized."""
        self._progress.update(self._tasks[stage], detail=text)

    def update(self, stage: str, completed: int) -> None:
        self._progress.update(self._tasks[stage], completed=completed)

    def __enter__(self) -> StageProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
