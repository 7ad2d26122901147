"""The serving agreement check's result, and the client side of it: the greedy completions, with the token ids the
server sampled, of a server (``codequant serve``, or vLLM on GPU hosts). The comparison with transformers' own
``generate`` runs where the model is served (``codequant_serving.agreement``); the orchestrator has both sides'
completions executed (``codequant_orchestrator.agreement``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

from codequant.errors import ServiceError
from codequant.jsonl import atomic_writer

#: Characters of each side shown around the first difference.
_SNIPPET = 40


@dataclass
class ProblemAgreement:
    """One problem: both completions' token counts, how many leading tokens agree (the first differing position),
    and both verdicts."""

    name: str
    reference_tokens: int
    served_tokens: int
    matching_tokens: int
    identical: bool
    reference_text: str
    served_text: str
    reference_passed: bool | None = None
    served_passed: bool | None = None


@dataclass
class AgreementResult:
    """The check of one model folder on one benchmark."""

    model: str
    server: str
    benchmark: str
    max_new_tokens: int
    problems: list[ProblemAgreement] = field(default_factory=list)

    @property
    def identical_rate(self) -> float:
        """Share of problems whose served completion equals the reference."""
        return sum(p.identical for p in self.problems) / len(self.problems)

    @property
    def token_agreement(self) -> float:
        """Share of token positions that agree: the positions before each problem's first difference over the
        length of the longer of its two completions (a completion that goes on where the other stopped differs)."""
        total = sum(max(p.reference_tokens, p.served_tokens) for p in self.problems)
        return sum(p.matching_tokens for p in self.problems) / total if total else 1.0

    def pass1(self, side: str) -> float | None:
        """Greedy pass@1 of one side (``reference`` or ``served``); None when not executed."""
        verdicts = [getattr(p, f"{side}_passed") for p in self.problems]
        return None if None in verdicts else sum(verdicts) / len(verdicts)

    @property
    def verdict_agreement(self) -> float | None:
        """Share of problems with the same pass/fail verdict on both sides; None when not executed."""
        if self.pass1("reference") is None:
            return None
        return sum(p.reference_passed == p.served_passed for p in self.problems) / len(self.problems)

    @property
    def first_difference(self) -> dict[str, Any] | None:
        """The first problem (in benchmark order) whose served completion differs, with the reference token
        position where it does and both texts from a little before it; None when all agree."""
        for p in self.problems:
            if not p.identical:
                common = len(_common_prefix(p.reference_text, p.served_text))
                start = max(0, common - _SNIPPET // 2)
                return {
                    "problem": p.name,
                    "token": p.matching_tokens,
                    "character": common,
                    "reference": p.reference_text[start : common + _SNIPPET],
                    "served": p.served_text[start : common + _SNIPPET],
                }
        return None

    def summary(self) -> str:
        """One line: the agreement rates, and where the first difference is."""
        line = (
            f"{self.model} on {self.benchmark} served by {self.server}: {sum(p.identical for p in self.problems)}/"
            f"{len(self.problems)} completions identical, tokens {100 * self.token_agreement:.1f}% agree"
        )
        if (reference := self.pass1("reference")) is not None:
            line += (
                f", greedy pass@1 {100 * reference:.1f}% (transformers) vs {100 * (self.pass1('served') or 0):.1f}% "
                f"(served), verdicts agree on {100 * (self.verdict_agreement or 0):.1f}%"
            )
        if (first := self.first_difference) is not None:
            line += (
                f"; first difference: {first['problem']} at reference token {first['token']} "
                f"(character {first['character']}): transformers {first['reference']!r} vs served {first['served']!r}"
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "server": self.server,
            "benchmark": self.benchmark,
            "max_new_tokens": self.max_new_tokens,
            "problems": len(self.problems),
            "identical_rate": self.identical_rate,
            "token_agreement": self.token_agreement,
            "pass1_reference": self.pass1("reference"),
            "pass1_served": self.pass1("served"),
            "verdict_agreement": self.verdict_agreement,
            "first_difference": self.first_difference,
            "per_problem": [asdict(p) for p in self.problems],
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AgreementResult:
        """The result ``to_dict`` gave (how it travels back from a worker)."""
        names = {f.name for f in fields(ProblemAgreement)}
        return cls(
            model=values["model"],
            server=values["server"],
            benchmark=values["benchmark"],
            max_new_tokens=values["max_new_tokens"],
            problems=[ProblemAgreement(**{k: v for k, v in p.items() if k in names}) for p in values["per_problem"]],
        )

    def write(self, path: Path) -> Path:
        """The result as JSON at ``path`` (written whole or not at all)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as handle:
            handle.write(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def served_completions(
    url: str, prompts: Sequence[str], max_new_tokens: int, server: str, *, timeout_s: float = 600
) -> list[tuple[str, list[int]]]:
    """(text, token ids) of each prompt's greedy completion (no stop sequences) from the server at ``url``:
    TGI's token stream for ``codequant`` (codequant serve; real TGI speaks it too), OpenAI completions with the
    sampled token ids (vLLM's ``return_tokens_as_token_ids``) for ``vllm``."""
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        if server == "vllm":
            return [_openai_completion(client, prompt, max_new_tokens) for prompt in prompts]
        return [_tgi_completion(client, prompt, max_new_tokens) for prompt in prompts]


def _tgi_completion(client: httpx.Client, prompt: str, max_new_tokens: int) -> tuple[str, list[int]]:
    body = {"inputs": prompt, "parameters": {"max_new_tokens": max_new_tokens, "do_sample": False}}
    ids: list[int] = []
    text = ""
    with client.stream("POST", "/generate_stream", json=body) as response:
        if response.status_code != 200:
            raise ServiceError(f"{client.base_url}generate_stream answered {response.status_code}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            if "error" in event:
                raise ServiceError(f"{client.base_url}generate_stream: {event['error']}")
            ids.append(event["token"]["id"])
            text = event["generated_text"] if event["generated_text"] is not None else text
    return text, ids


def _openai_completion(client: httpx.Client, prompt: str, max_new_tokens: int) -> tuple[str, list[int]]:
    model = client.get("/v1/models").raise_for_status().json()["data"][0]["id"]
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_new_tokens,
        "temperature": 0,
        "logprobs": 1,
        "return_tokens_as_token_ids": True,  # vLLM: logprobs.tokens are "token_id:<id>"
    }
    response = client.post("/v1/completions", json=body)
    if response.status_code != 200:
        raise ServiceError(f"{client.base_url}v1/completions answered {response.status_code}: {response.text[:200]}")
    choice = response.json()["choices"][0]
    return choice["text"], [int(token.removeprefix("token_id:")) for token in choice["logprobs"]["tokens"]]


def _common_prefix(a: str, b: str) -> str:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return a[:index]
    return a[: min(len(a), len(b))]
