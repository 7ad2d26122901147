"""Export a report to an experiment tracker: MLflow or Weights & Biases, when installed (extras ``[mlflow]`` and
``[wandb]``), never required. One run per export: the report's metrics (pass@k per variant and benchmark, the
cost figures), the study's sampling settings as parameters, and the report's files as artifacts."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from codequant.errors import InputError
from codequant_reporter.analysis import REPORTED_K, Analysis, pass_at, samples
from codequant_reporter.cost import cost_figures

TARGETS = {"mlflow": "mlflow", "wandb": "wandb"}  # target -> the module it needs
COST_METRICS = ("tokens_per_s", "latency_p50_s", "peak_memory_bytes", "perplexity")


def check_target(target: str) -> None:
    """InputError (exit 2) for an unknown target or one whose package is not installed — before any work."""
    if target not in TARGETS:
        raise InputError(f"--export must be one of {', '.join(TARGETS)}, got {target!r}")
    if importlib.util.find_spec(TARGETS[target]) is None:
        raise InputError(
            f"--export {target} needs the {TARGETS[target]} package: pip install 'codequant-reporter[{target}]'"
        )


def metric_key(*parts: str) -> str:
    """A metric name both trackers accept: the parts joined by '/', other characters than [A-Za-z0-9_.-] as '_'."""
    return "/".join(re.sub(r"[^A-Za-z0-9_.\- ]", "_", part) for part in parts)


def report_metrics(analysis: Analysis) -> dict[str, float]:
    """pass@k of every usable variant (baselines included) on every benchmark, for each reported k its samples
    allow, and each variant's measured serving cost: ``MODEL/VARIANT/BENCHMARK/pass_at_K``, ``MODEL/VARIANT/NAME``."""
    data = analysis.data
    metrics: dict[str, float] = {}
    for model in data.models:
        for variant in model.variants:
            if not data.usable(variant):
                continue
            for benchmark in data.benchmarks:
                for k in (k for k in REPORTED_K if k <= samples(data, variant, benchmark)):
                    value = pass_at(data, variant, benchmark, k)
                    if value is not None:
                        metrics[metric_key(model.name, variant.name, benchmark, f"pass_at_{k}")] = value
            figures = cost_figures(data.serving.get(variant.key))
            for name in COST_METRICS:
                if figures[name] is not None:
                    metrics[metric_key(model.name, variant.name, name)] = float(figures[name])
    return metrics


def report_params(analysis: Analysis) -> dict[str, str]:
    """The study settings a run is compared by."""
    study = analysis.data.study
    sampling = study.sampling
    return {
        "study": study.name,
        "models": ",".join(m.name for m in study.models),
        "benchmarks": ",".join(analysis.data.benchmarks),
        "n": str(sampling.n),
        "temperature": str(sampling.temperature),
        "top_p": str(sampling.top_p),
        "seed": str(sampling.seed),
        "correction": study.statistics.correction,
    }


def export_report(target: str, analysis: Analysis, files: Mapping[str, Path], *, experiment: str | None = None) -> str:
    """Log the report to ``target`` (``mlflow``: the tracking URI from $MLFLOW_TRACKING_URI; ``wandb``: the
    project ``experiment``, $WANDB_MODE offline works); the experiment/project is the study's name by default.
    Returns where the run is (the MLflow run id, the W&B run URL or folder) and how many metrics it has."""
    check_target(target)
    name = experiment or analysis.data.study.name
    metrics, params = report_metrics(analysis), report_params(analysis)
    where = (_mlflow if target == "mlflow" else _wandb)(name, metrics, params, files)
    return f"{where} ({len(metrics)} metrics, {len(files)} files)"


def _mlflow(name: str, metrics: dict[str, float], params: dict[str, str], files: Mapping[str, Path]) -> str:
    import mlflow

    mlflow.set_experiment(name)
    with mlflow.start_run(run_name=f"report {params['study']}") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for path in files.values():
            mlflow.log_artifact(str(path), artifact_path="report")
    return f"mlflow run {run.info.run_id} in experiment {name!r}"


def _wandb(name: str, metrics: dict[str, float], params: dict[str, str], files: Mapping[str, Path]) -> str:
    import wandb

    run = wandb.init(project=name, name=f"report {params['study']}", config=params, job_type="report")
    try:
        run.summary.update(metrics)
        artifact = wandb.Artifact(metric_key(f"report-{params['study']}").replace("/", "-"), type="report")
        for path in files.values():
            artifact.add_file(str(path), name=path.name)
        run.log_artifact(artifact)
        where = run.url or str(Path(run.dir).parent)  # offline: the run's folder, for `wandb sync`
    finally:
        run.finish()
    return f"wandb run {where}"
