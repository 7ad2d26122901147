"""What every `codequant` process sets up before any library loads: quiet libraries unless --verbose, and pinned CPU
numerics (``CODEQUANT_NUMERICS=native`` aside), both inherited by the processes it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codequant import numerics, quiet
from tests.cli import codequant_in_process

REPO = Path(__file__).resolve().parents[2]
#: A process set up as `codequant` sets itself up, in which libraries speak; it prints what its children inherit.
CHILD = """
import json, logging, os, sys, warnings
from codequant import numerics, quiet
numerics.pin()
quiet.configure(verbose_output=sys.argv[1] == "verbose")
warnings.warn("a library's warning")
logging.getLogger("transformers").warning("Token indices sequence length is longer than the maximum")
logging.getLogger("codequant_orchestrator").error("variant x failed")
names = [*numerics.PINNED, *quiet.ENVIRONMENT, quiet.VERBOSE_ENV]
print(json.dumps({name: os.environ.get(name) for name in names}))
"""


def child(mode: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (*numerics.PINNED, *quiet.ENVIRONMENT, numerics.MODE_ENV)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, mode], env={**env, **environment}, capture_output=True, text=True, timeout=60
    )


def test_libraries_are_quiet_unless_verbose_and_codequant_still_speaks() -> None:
    quiet_run, verbose_run = child("quiet"), child("verbose")
    assert "a library's warning" not in quiet_run.stderr and "Token indices" not in quiet_run.stderr
    assert "variant x failed" in quiet_run.stderr  # codequant's own errors stay
    inherited = json.loads(quiet_run.stdout)
    assert {name: inherited[name] for name in quiet.ENVIRONMENT} == quiet.ENVIRONMENT  # model servers inherit it
    assert "a library's warning" in verbose_run.stderr and "Token indices" in verbose_run.stderr
    assert json.loads(verbose_run.stdout)["HF_HUB_DISABLE_PROGRESS_BARS"] is None


def test_the_numerics_are_pinned_for_the_processes_codequant_starts_unless_native() -> None:
    pinned = json.loads(child("quiet", OMP_NUM_THREADS="16", MKL_CBWR="AUTO").stdout)
    assert {name: pinned[name] for name in numerics.settings()} == numerics.settings()  # a stray setting is overridden
    native = json.loads(child("quiet", CODEQUANT_NUMERICS="native", OMP_NUM_THREADS="16").stdout)
    assert native["OMP_NUM_THREADS"] == "16" and native["ATEN_CPU_CAPABILITY"] is None


def test_the_verbose_option_comes_before_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(quiet, "configure", lambda *, verbose_output: seen.append(verbose_output))
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    for line in (["--verbose", "validate"], ["validate"]):
        result = codequant_in_process(*line, REPO / "examples" / "demo.yaml")
        assert result.returncode == 0, result.stderr
    assert seen == [True, False]


def test_every_job_records_the_numerics_it_ran_with() -> None:
    from codequant.environment import describe

    assert describe()["numerics"] == numerics.describe()
    assert numerics.describe().startswith("native") == (not numerics.pinned())
