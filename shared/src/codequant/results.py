"""Per-sample results of a study, keyed deterministically: completion keys, completion rows, stored outcomes.

Used by the generator (which stores completions), the orchestrator (exports, summaries, progress) and the
reporter, so all of them count exactly the completions the study's sampling settings ask for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from codequant.keys import completion_key
from codequant.store import ChatAnswer, Completion, Execution, Store
from codequant.study import Study
from codequant.study.spec import SamplingParams

_CHUNK = 500


def sample_keys(
    variant_key: str, benchmark: str, problems: Iterable[str], sampling: SamplingParams
) -> dict[tuple[str, int], str]:
    """The completion key of every (problem, sample) of one variant on one benchmark."""
    key = sampling.as_key()
    return {
        (problem, sample): completion_key(variant_key, benchmark, problem, sample, key)
        for problem in problems
        for sample in range(sampling.n)
    }


def completion_keys(
    study: Study, variant_key: str, benchmark: str, problems: Iterable[str]
) -> dict[tuple[str, int], str]:
    """The completion key of every (problem, sample) the study needs for one variant and benchmark."""
    return sample_keys(variant_key, benchmark, problems, study.sampling_params(benchmark))


def completion_row(variant_key: str, benchmark: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
    """The store row of one sampled completion, from a generator record."""
    return {
        "key": key,
        "variant_key": variant_key,
        "benchmark": benchmark,
        "problem": record["name"],
        "sample": record["sample"],
        "completion": record["completion"],
        "finish_reason": record.get("finish_reason"),
        "prompt_tokens": record.get("prompt_tokens"),
        "completion_tokens": record.get("completion_tokens"),
        "latency_s": record.get("latency_s"),
    }


def sample_results(store: Store, keys: dict[tuple[str, int], str]) -> dict[tuple[str, int], dict[str, Any]]:
    """Stored completion and execution of each (problem, sample) in ``keys``; samples not stored are absent.

    Each value has ``completion``, ``finish_reason``, ``answer`` (an instruct-mode completion's whole chat answer,
    else None) and, once executed, ``status`` and ``passed`` (None before execution).
    """
    by_key = {key: pair for pair, key in keys.items()}
    values = list(by_key)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    with store.session() as session:
        for start in range(0, len(values), _CHUNK):
            query = (
                select(Completion, Execution, ChatAnswer.answer)
                .outerjoin(Execution, Execution.key == Completion.execution_key)
                .outerjoin(ChatAnswer, ChatAnswer.key == Completion.key)
                .where(Completion.key.in_(values[start : start + _CHUNK]))
            )
            for completion, execution, answer in session.execute(query):
                found[by_key[completion.key]] = {
                    "completion": completion.completion,
                    "finish_reason": completion.finish_reason,
                    "answer": answer,
                    "status": execution.status if execution else None,
                    "passed": execution.passed if execution else None,
                }
    return found
