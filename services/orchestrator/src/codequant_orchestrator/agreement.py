"""The serving agreement check of a study: the same weights served two ways must give the same greedy completions.

The token comparison (``codequant_serving.agreement``) runs where the model is served; both sides' completions,
cut at the problems' stop tokens, then run against their tests, so the check gives the agreement rate in tokens and
in pass@1, and names the first problem and token position where the server leaves the reference: a serving-kernel
bug then shows up here, not as quantization damage in the study's numbers. The embedded runner does all of it in
process; the distributed one sends the comparison to the `generate` queue and the executions to `execute`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from codequant.agreement import AgreementResult
from codequant.benchmarks import BenchmarkSet, Problem
from codequant.errors import ServiceError
from codequant.limits import Limits
from codequant.payloads import AgreementRequest, ExecuteRequest, ExecuteResult, ExecutionItem
from codequant_orchestrator.plan import Plan, VariantPlan


def agreement_request(
    model: str,
    problems: BenchmarkSet,
    *,
    max_new_tokens: int = 128,
    server: str = "codequant",
    dtype: str = "auto",
    device: str = "cpu",
) -> AgreementRequest:
    """The token comparison of ``model`` served by ``server`` on ``problems``."""
    return AgreementRequest(
        model=model,
        benchmark=problems.name,
        problems=[asdict(p) for p in problems.problems],
        max_new_tokens=max_new_tokens,
        server=server,
        dtype=dtype,
        device=device,
    )


def check_agreement(
    model: str,
    problems: BenchmarkSet,
    *,
    max_new_tokens: int = 128,
    server: str = "codequant",
    url: str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    execute: bool = True,
    limits: Limits | None = None,
) -> AgreementResult:
    """Compare transformers' greedy completions of ``model`` with those of ``server`` serving the same folder
    (started here, or already running at ``url``); with ``execute``, run both sides' completions against the
    tests (the executor's sandbox) for the pass@1 agreement."""
    request = agreement_request(
        model, problems, max_new_tokens=max_new_tokens, server=server, dtype=dtype, device=device
    )
    from codequant_serving.agreement import compare_served

    result = compare_served(request, url)
    if execute:
        from codequant_executor.api import execute_batch

        outcome = execute_batch(execute_request(result, problems.problems, limits or Limits()))
        set_verdicts(result, outcome)
    return result


def study_requests(plan: Plan, variant: VariantPlan, model_path: str) -> list[AgreementRequest]:
    """The study option ``serving.agreement`` for one self-served variant: one comparison per completion-mode
    benchmark on its first problems (none without the option or for a variant behind an endpoint). The reference
    runs where the server runs: on the CPU beside ``codequant serve``, on CUDA beside vLLM."""
    options = plan.study.serving.agreement
    if options is None or variant.variant.endpoint is not None:
        return []
    server = plan.study.serving.server if variant.variant.vllm_servable else "codequant"
    if server != "codequant":
        from codequant.launch import resolve_server

        server = resolve_server(server)
    return [
        agreement_request(
            model_path,
            BenchmarkSet(name, benchmark.problems[: options.problems], benchmark.provenance),
            max_new_tokens=options.max_new_tokens,
            server=server,
            dtype=variant.model.dtype,
            device="cuda" if server == "vllm" else "cpu",
        )
        for name, benchmark in plan.benchmarks.items()
        if plan.study.benchmark(name).prompt_mode == "completion"  # a chat template: no plain generate to compare
    ]


def finish_study_check(plan: Plan, variant: VariantPlan, result: AgreementResult) -> Path:
    """Write an executed check to ``<output>/agreement/<model>/<variant>/<benchmark>.json``; ServiceError (the
    variant fails) when the server reproduces less than ``min_token_agreement`` of the tokens."""
    options = plan.study.serving.agreement
    assert options is not None
    out = plan.study.out_dir / "agreement" / variant.model.name / variant.variant.name / f"{result.benchmark}.json"
    written = result.write(out)
    if result.token_agreement < options.min_token_agreement:
        raise ServiceError(f"serving agreement below {options.min_token_agreement:.0%}: {result.summary()}")
    return written


def check_study_variant(plan: Plan, variant: VariantPlan, model_path: str) -> list[Path]:
    """The study option ``serving.agreement`` run here for one variant (the embedded runner); see
    ``study_requests`` and ``finish_study_check``."""
    from codequant_executor.api import execute_batch
    from codequant_serving.agreement import compare_served

    written = []
    for request in study_requests(plan, variant, model_path):
        result = compare_served(request)
        problems = plan.benchmarks[request.benchmark].by_name()
        execute = execute_request(result, [problems[p.name] for p in result.problems], plan.study.execution.limits())
        set_verdicts(result, execute_batch(execute))
        written.append(finish_study_check(plan, variant, result))
    return written


def execute_request(result: AgreementResult, problems: Sequence[Problem], limits: Limits) -> ExecuteRequest:
    """Both sides' completions of every compared problem, cut at its stop tokens, as one execution request (the
    completion keys name the problem's position and the side)."""
    from codequant_generator.api import cut_at_stop

    return ExecuteRequest(
        items=[
            ExecutionItem(
                name=problem.name,
                language=problem.language,
                prompt=problem.prompt,
                completion=cut_at_stop(text, problem.stop_tokens),
                tests=problem.tests,
                completion_key=f"agreement:{index}:{side}",
            )
            for index, (problem, p) in enumerate(zip(problems, result.problems, strict=True))
            for side, text in (("reference", p.reference_text), ("served", p.served_text))
        ],
        limits=limits.as_key(),
    )


def set_verdicts(result: AgreementResult, executed: ExecuteResult) -> None:
    """Fill each problem's verdicts from the execution of ``execute_request``'s programs."""
    passed = {o.completion_key: o.passed for o in executed.outcomes}
    for index, p in enumerate(result.problems):
        p.reference_passed = passed[f"agreement:{index}:reference"]
        p.served_passed = passed[f"agreement:{index}:served"]
