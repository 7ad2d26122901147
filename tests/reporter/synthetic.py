"""A synthetic study written into a real results store: several models, variants, benchmarks, languages."""

from __future__ import annotations

import random

from codequant.keys import stable_hash
from codequant.results import completion_keys
from codequant.store import (
    Completion,
    Execution,
    Job,
    JobEnvironment,
    ServingMeasurement,
    Store,
    StudyVariant,
    Variant,
)
from codequant.store import Study as StudyRow
from codequant.study import parse_study

SPEC = """\
name: synthetic
models:
  - name: Coder-7B
    hub_id: org/coder-7b
    dtype: float16
    params: 7B
    variants: &variants
      - {name: fp16, method: baseline}
      - {name: aqlm-8bit, method: aqlm, preset: aqlm-8bit}
      - {name: aqlm-4bit, method: aqlm, preset: aqlm-4bit}
      - {name: aqlm-3bit, method: aqlm, preset: aqlm-3bit}
      - {name: aqlm-2bit, method: aqlm, preset: aqlm-2bit}
      - {name: aqlm-2bit-code, method: aqlm, preset: aqlm-2bit, calibration: code}
      - {name: aqlm-2bit-code-ft, method: aqlm, preset: aqlm-2bit, calibration: code, finetune: true}
      - {name: rtn-4bit, method: rtn, bits: 4}
  - name: Coder-13B
    hub_id: org/coder-13b
    dtype: float16
    variants: *variants
benchmarks:
  - {name: multiple-humaneval-py, limit: 12}
  - {name: multiple-humaneval-java, limit: 12}
  - {name: mceval-python, limit: 10, exclude_humaneval_overlap: true}
  - {name: mceval-java, limit: 10}
sampling: {n: 6}
statistics: {bootstrap_samples: 500}
"""

#: Probability that a sample passes, by variant and model: quantization hurts, more at fewer bits.
SKILL = {
    "fp16": 0.7,
    "aqlm-8bit": 0.7,
    "aqlm-4bit": 0.66,
    "aqlm-3bit": 0.55,
    "aqlm-2bit": 0.25,
    "aqlm-2bit-code": 0.33,
    "aqlm-2bit-code-ft": 0.4,
    "rtn-4bit": 0.5,
}
PARAMS = {"Coder-7B": 6_740_000_000, "Coder-13B": 13_000_000_000}
#: Where each model's variants were quantized, as the quantizer workers reported it (two different GPU hosts).
QUANTIZER_HOSTS = {
    "Coder-7B": {
        "python": "3.11.9",
        "codequant-quantizer": "0.1.0",
        "torch": "2.6.0+cu124",
        "platform": "Linux-6.8.0-x86_64-with-glibc2.35",
        "cpu": "AMD EPYC 9654 96-Core Processor",
        "cpu_cores": "192",
        "memory_gib": "1511.6",
        "gpu": "NVIDIA H100 80GB HBM3, 81559 MiB",
    },
    "Coder-13B": {
        "python": "3.11.9",
        "codequant-quantizer": "0.1.0",
        "torch": "2.6.0+cu124",
        "platform": "Linux-6.8.0-x86_64-with-glibc2.35",
        "cpu": "Intel(R) Xeon(R) Platinum 8480+",
        "cpu_cores": "112",
        "memory_gib": "2015.3",
        "gpu": "NVIDIA A100-SXM4-80GB, 81920 MiB",
    },
}


def footprint(params: int, variant: dict) -> dict:
    if variant["method"] == "baseline":
        bits = 16.0
    elif variant["method"] == "rtn":
        bits = variant["bits"] + 0.25
    else:
        bits = variant["num_codebooks"] * variant["nbits_per_codebook"] / variant["in_group_size"] + 0.3
    total = int(params * bits / 8)
    return {
        "total_bytes": total,
        "gb": total / 1e9,
        "nominal_bits_per_param": bits,
        "stored_bits_per_param": bits,
        "num_parameters": params,
        "breakdown": {"codes": total, "codebooks": 0, "scales": 0, "unquantized": 0},
    }


def serving(model: str, variant: str, key: str) -> dict:
    """What serving the variant cost, as the generate stage records it: codequant serve on a GPU for AQLM and the
    baseline, an external endpoint without codequant's routes for RTN."""
    row = {"variant_key": key, "requests": 40, "samples": 240, "completion_tokens": 24_000, "generation_s": 60.0}
    row["latencies_s"] = [2.0, 3.0, 4.0, 5.0] * 10
    if variant.startswith("rtn"):
        return {**row, "server": "external endpoint (openai)", "note": "the endpoint has no /codequant routes"}
    bits = 16 if variant == "fp16" else int(variant.split("-")[1].removesuffix("bit"))
    weights = PARAMS[model] * bits // 8
    return {
        **row,
        "server": "codequant serve (transformers)",
        "memory": {
            "device": "cuda:0",
            "source": "torch.cuda.max_memory_allocated",
            "peak_bytes": weights + 2_000_000_000,
            "current_bytes": weights + 500_000_000,
            "model_bytes": weights,
        },
        "perplexity": 1.5 + 16 / bits,
        "perplexity_tokens": 5_000,
        "perplexity_set": "codequant-heldout-v1",
    }


def write_study(
    store: Store,
    *,
    seed: int = 0,
    skip_execution_of: str | None = None,
    fail_variant: str | None = None,
    spec: str = SPEC,
) -> str:
    """Write the synthetic study (``spec``: another study text with the same models); returns its id. Outcomes
    are correlated with the baseline's per problem."""
    study = parse_study(spec)
    rng = random.Random(seed)
    with store.session() as session:
        session.add(StudyRow(id=study.name, spec_yaml=spec, spec_hash=stable_hash(spec), status="done"))
    problems = {b.name: [p.name for p in b.load().problems] for b in study.benchmarks}
    for model in study.models:
        difficulty = {(b, p): rng.random() for b, names in problems.items() for p in names}
        for variant in model.variants:
            key = model.variant_key(variant.name)
            config = variant.method_config()
            failed = variant.name == fail_variant and model.name == "Coder-13B"
            store.insert_ignore(
                Variant,
                [
                    {
                        "key": key,
                        "model_name": model.name,
                        "variant_name": variant.name,
                        "method": variant.method,
                        "config": config,
                        "model_source": model.source(),
                        "status": "failed" if failed else "ready",
                        "footprint": None if failed else footprint(PARAMS[model.name], config),
                        "error": "CUDA out of memory" if failed else None,
                    }
                ],
            )
            with store.session() as session:
                session.add(StudyVariant(study_id=study.name, variant_key=key))
            store.insert_ignore(
                Job,
                [
                    {
                        "key": f"synthetic:quantize:{key}",
                        "study_id": study.name,
                        "stage": "quantize",
                        "variant_key": key,
                        "status": "done",
                        "seconds": 120.0,
                    }
                ],
            )
            store.insert_ignore(
                JobEnvironment,
                [
                    {
                        "job_key": f"synthetic:quantize:{key}",
                        "study_id": study.name,
                        "stage": "quantize",
                        "environment": QUANTIZER_HOSTS[model.name],
                    }
                ],
            )
            if failed:
                continue
            store.insert_ignore(ServingMeasurement, [serving(model.name, variant.name, key)])
            completions, executions = [], []
            skill = SKILL[variant.name] + (0.05 if model.name == "Coder-13B" else 0.0)
            for benchmark, names in problems.items():
                keys = completion_keys(study, key, benchmark, names)
                for (problem, sample), ckey in keys.items():
                    passed = rng.random() < skill * (1.4 - difficulty[(benchmark, problem)])
                    ekey = stable_hash([variant.name, model.name, benchmark, problem, sample])[:40]
                    skip = skip_execution_of == variant.name and model.name == "Coder-7B"
                    completions.append(
                        {
                            "key": ckey,
                            "variant_key": key,
                            "benchmark": benchmark,
                            "problem": problem,
                            "sample": sample,
                            "completion": "...",
                            "execution_key": None if skip else ekey,
                        }
                    )
                    executions.append(
                        {
                            "key": ekey,
                            "language": "python",
                            "status": "OK" if passed else "Failure",
                            "passed": passed,
                            "exit_code": 0 if passed else 1,
                        }
                    )
            store.insert_ignore(Completion, completions)
            store.insert_ignore(Execution, executions)
    return study.name
