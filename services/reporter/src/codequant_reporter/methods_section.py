"""The report's methods section: what was run, how, on what, and how long it took."""

from __future__ import annotations

from codequant.environment import describe
from codequant.instruct import INSTRUCT_VERSION
from codequant.study.spec import BenchmarkSpec
from codequant_reporter.study_data import StudyData

#: What the report stage's numbers depend on.
PACKAGES = ("codequant-reporter", "numpy", "scipy", "statsmodels", "matplotlib")
_HARDWARE = ("platform", "cpu", "cpu_cores", "memory_gib", "gpu")
_STAGES = ("quantize", "generate", "execute", "report")


def _prompt_mode(benchmark: BenchmarkSpec) -> str:
    if benchmark.prompt_mode == "completion":
        return "completion (the model continues the prompt; the text is cut at the stop tokens)"
    prefix = "answer prefixed with the prompt" if benchmark.response_prefix else "no response prefix"
    return (
        f"instruct (the model's chat template, instruction version {INSTRUCT_VERSION}, {prefix}; the function and "
        "what it uses extracted from the answer)"
    )


def methods_section(data: StudyData) -> list[tuple[str, list[str]]]:
    """Sections of (heading, lines) describing the study as run."""
    study = data.study
    s, x, t = study.sampling, study.execution, study.statistics
    sampling = [
        f"n = {s.n} samples per problem, temperature {s.temperature}, top-p {s.top_p}, seed {s.seed}.",
        "Max new tokens: " + ", ".join(f"{b.name} {study.max_new_tokens(b.name)}" for b in study.benchmarks) + ".",
        "Prompt mode: " + ", ".join(f"{b.name} {_prompt_mode(b)}" for b in study.benchmarks) + ".",
        f"Execution: sandboxed, timeout {x.timeout_s:g} s, memory {x.memory_mb} MB, output cap {x.max_output_bytes} "
        "bytes per stream; a sample passes only if all its tests ran to completion (status OK).",
    ]
    statistics = [
        "pass@k: mean over problems of the unbiased estimator 1 − C(n−c, k)/C(n, k) (Chen et al., 2021).",
        "Each variant is compared with its model's baseline on samples paired by (problem, sample index): McNemar's "
        "test (exact binomial when the discordant count is below 25, else χ² with continuity correction), odds ratio "
        "= baseline-only / variant-only passes (0.5 added to both when either is 0).",
        f"Multiple testing: {t.correction} within each {t.family}; α = {t.alpha}.",
        "Problem-level (samples of one problem not treated as independent): Wilcoxon signed-rank test over per-problem "
        f"pass rates and a {t.bootstrap_samples}-resample bootstrap (seed {t.seed}) 95 % CI of the pass@1 difference.",
        f"Non-inferiority (margin {t.margin_pp:g} pp of pass@1): one-sided paired t-tests over per-problem pass "
        f"rates at α = {t.alpha}; non-inferior when the lower bound of the change is above the "
        "−margin, a drop shown when the upper bound is below 0, otherwise inconclusive; uninformative where the "
        "baseline passes nothing (no drop can be seen). Bounds are clipped to [−100, 100] pp. Minimum detectable drop: "
        f"the smallest true drop found with power 0.8 at one-sided α = {t.alpha}, simulated at the problem level "
        "(problems resampled from the baseline's pass rates, n binomial samples per side, paired t-test).",
    ]
    benchmarks = []
    for name, bench in data.benchmarks.items():
        benchmarks.append(f"{name}: {len(bench.problems)} problems; source {bench.provenance}.")
        benchmarks += [f"{name}: excluded {problem} — {why}" for problem, why in bench.excluded.items()]
        benchmarks += [f"{name}: repaired {problem} — {why}" for problem, why in bench.repaired.items()]
    variants = []
    for model in data.models:
        for v in model.variants:
            detail = ", ".join(f"{k}={val}" for k, val in sorted(v.config.items()) if k != "method" and val is not None)
            state = "" if v.status != "failed" else f" — FAILED: {v.error}"
            variants.append(f"{model.name}/{v.name}: {v.precision}" + (f" ({detail})" if detail else "") + state)
    timing = [f"{stage}: {seconds / 60:.1f} min" for stage, seconds in sorted(data.stage_seconds.items())]
    for model in data.models:
        for v in model.variants:
            per = data.variant_seconds.get(v.key)
            if per:
                timing.append(
                    f"{model.name}/{v.name}: " + ", ".join(f"{k} {sec:.0f} s" for k, sec in sorted(per.items()))
                )
    environments = {**data.environments, "report": [describe(PACKAGES)]}  # the report is rendered here
    environment = [
        line
        for stage in sorted(environments, key=lambda s: (*_STAGES, s).index(s))
        for index, found in enumerate(environments[stage])
        for line in _environment_lines(stage if len(environments[stage]) == 1 else f"{stage} #{index + 1}", found)
    ]
    return [
        ("Sampling and execution", sampling),
        ("Statistics", statistics),
        ("Benchmarks", benchmarks),
        ("Variants", variants),
        ("Time per stage", timing or ["no timings recorded"]),
        ("Software and hardware (where each stage ran)", environment or ["no environment recorded"]),
    ]


def _environment_lines(stage: str, environment: dict[str, str]) -> list[str]:
    software = ", ".join(f"{k} {v}" for k, v in environment.items() if k not in _HARDWARE)
    machine = environment.get("cpu", "?")
    if "cpu_cores" in environment:
        machine += f" ({environment['cpu_cores']} cores"
        machine += f", {environment['memory_gib']} GiB)" if "memory_gib" in environment else ")"
    return [
        f"{stage}: {software}.",
        f"{stage} hardware: {machine}; GPU: {environment.get('gpu', '?')}; {environment.get('platform', '?')}.",
    ]
