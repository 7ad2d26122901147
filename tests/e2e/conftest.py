"""Studies run through the `codequant` command, as a user runs them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import cli

#: codequant ARGS... -> the finished process (output captured as text)
Codequant = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def codequant() -> Codequant:
    """Run ``codequant ARGS...`` in a fresh interpreter, with a time limit (seconds)."""

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return cli.codequant(*args, timeout=timeout)

    return run


@pytest.fixture
def run_study(tmp_path: Path, codequant: Codequant) -> Callable[[str], tuple[Path, subprocess.CompletedProcess[str]]]:
    """Write a study (its text formatted with ``out``, the output folder) and `codequant run` it; returns the
    output folder and the finished run."""

    def run(template: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
        out = tmp_path / "run"
        study = tmp_path / "study.yaml"
        study.write_text(template.format(out=out))
        return out, codequant("run", str(study), "--no-progress", timeout=1500)

    return run
