"""`codequant report --export`: the report's metrics and files logged to a real MLflow file store and read back."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import pytest

from tests.cli import codequant
from tests.reporter.test_report import make_study_dir


def test_mlflow_export_logs_pass_at_k_cost_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store only on request
    folder = make_study_dir(tmp_path, fail_variant="aqlm-3bit")
    uri = (tmp_path / "mlruns").as_uri()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    done = codequant("report", str(folder), "--format", "md,csv,json", "--export", "mlflow", timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "exported to mlflow run " in done.stdout + done.stderr

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("synthetic")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics, params = run.data.metrics, run.data.params
    assert params["n"] == "6" and params["study"] == "synthetic"
    report = json.loads((folder / "report" / "report.json").read_text())
    fp16 = next(r for r in report["tables"]["table3-multipl-e-humaneval"]["records"] if r["variant"] == "fp16")
    assert metrics["Coder-7B/fp16/multiple-humaneval-py/pass_at_1"] == pytest.approx(
        fp16["multiple-humaneval-py"]["pass@1"]
    )
    # n = 6 samples: pass@10 and pass@100 are not estimable, so they are not logged.
    assert not any(key.endswith(("pass_at_10", "pass_at_100")) for key in metrics)
    # 2 models x 8 variants, less Coder-13B's failed one, x 4 benchmarks.
    assert sum(key.endswith("pass_at_1") for key in metrics) == (2 * 8 - 1) * 4
    with (folder / "report" / "cost.csv").open() as handle:
        cost = {(r["Model"], r["Variant"]): r for r in csv.DictReader(handle)}
    assert metrics["Coder-7B/aqlm-2bit/tokens_per_s"] == pytest.approx(
        float(cost[("Coder-7B", "aqlm-2bit")]["tokens/s"])
    )
    assert metrics["Coder-7B/aqlm-2bit/perplexity"] == pytest.approx(9.5)
    assert "Coder-7B/rtn-4bit/perplexity" not in metrics  # an external endpoint: not measured, not invented
    assert not any(key.startswith("Coder-13B/aqlm-3bit/") for key in metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/report.json", "report/cost.csv", "report/pass1_vs_memory.png"} <= artifacts


def test_a_missing_tracker_package_is_one_line_and_exit_2_before_any_work(tmp_path: Path) -> None:
    folder = make_study_dir(tmp_path)
    unknown = codequant("report", str(folder), "--export", "neptune", timeout=120)
    assert unknown.returncode == 2 and "'neptune' is not one of 'mlflow', 'wandb'" in unknown.stderr
    if importlib.util.find_spec("wandb") is None:
        missing = codequant("report", str(folder), "--export", "wandb", timeout=120)
        assert missing.returncode == 2
        assert (
            missing.stderr.strip()
            .splitlines()[-1]
            .endswith("--export wandb needs the wandb package: pip install 'codequant-reporter[wandb]'")
        )
    assert not (folder / "report").exists()
