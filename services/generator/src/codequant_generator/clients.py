"""Endpoint clients: TGI (huggingface_hub.InferenceClient) and OpenAI-compatible (openai), with retries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

from codequant.errors import InputError, ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Endpoint:
    """A TGI, vLLM or OpenAI-compatible server."""

    url: str
    api: Literal["tgi", "openai"] = "tgi"
    model: str | None = None  # the OpenAI API's model name (default: the server's first model)


@dataclass(frozen=True)
class Sample:
    """One generated text as the server returned it."""

    text: str
    finish_reason: str | None
    completion_tokens: int | None
    prompt_tokens: int | None
    latency_s: float


@dataclass(frozen=True)
class Retry:
    """Exponential backoff for connection errors and 5xx answers."""

    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def call(self, what: str, fn: Callable[[], T]) -> T:
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as exc:
                if not _transient(exc) or attempt == self.attempts:
                    raise _as_service_error(what, exc, attempt) from None
                log.warning(
                    "%s failed (%s); retry %d/%d in %.0f s", what, _describe(exc), attempt, self.attempts - 1, delay
                )
                time.sleep(delay)
                delay = min(self.max_delay_s, delay * 2)
        raise AssertionError("unreachable")


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) or getattr(exc, "status_code", None)


def _transient(exc: Exception) -> bool:
    import openai

    if isinstance(exc, httpx.TransportError | openai.APIConnectionError | openai.APITimeoutError | ConnectionError):
        return True
    status = _status(exc)
    return status is not None and status >= 500


def _describe(exc: Exception) -> str:
    status = _status(exc)
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return f"HTTP {status}: {text}" if status else text


def _as_service_error(what: str, exc: Exception, attempts: int) -> ServiceError:
    status = _status(exc)
    if status is not None and 400 <= status < 500:
        return ServiceError(f"{what}: the endpoint rejected the request ({_describe(exc)})")
    return ServiceError(f"{what}: endpoint unreachable after {attempts} attempt(s) ({_describe(exc)})")


class TgiClient:
    """TGI's /generate through huggingface_hub.InferenceClient, one sample per request."""

    def __init__(self, endpoint: Endpoint, retry: Retry, timeout_s: float) -> None:
        from huggingface_hub import InferenceClient

        self.endpoint = endpoint
        self.retry = retry
        self.client = InferenceClient(model=endpoint.url.rstrip("/"), timeout=timeout_s)

    def check(self) -> None:
        self.retry.call(
            f"GET {self.endpoint.url}/health",
            lambda: httpx.get(f"{self.endpoint.url.rstrip('/')}/health", timeout=10).raise_for_status(),
        )

    per_sample = True  # one request per sample: spread samples over concurrent requests

    def sample(
        self,
        prompt: str,
        *,
        n: int,
        indices: list[int],
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
    ) -> dict[int, Sample]:
        """Samples ``indices`` of n; sample i is requested with seed + i."""
        samples = {}
        for index in indices:
            start = time.monotonic()
            sampling = temperature > 0
            output: Any = self.retry.call(
                f"POST {self.endpoint.url}",
                lambda i=index, s=sampling: self.client.text_generation(
                    prompt,
                    max_new_tokens=max_new_tokens,
                    do_sample=s,
                    temperature=temperature if s else None,
                    top_p=top_p if s and top_p < 1 else None,
                    stop=stop,
                    seed=seed + i,
                    details=True,
                ),
            )
            samples[index] = Sample(
                output.generated_text,
                str(output.details.finish_reason),
                output.details.generated_tokens,
                None,
                time.monotonic() - start,
            )
        return samples


class OpenAiClient:
    """The OpenAI completions API through the openai client: one request returns all n samples."""

    def __init__(self, endpoint: Endpoint, retry: Retry, timeout_s: float) -> None:
        import openai

        self.endpoint = endpoint
        self.retry = retry
        base = endpoint.url.rstrip("/")
        self.client = openai.OpenAI(
            base_url=base if base.endswith("/v1") else f"{base}/v1",
            api_key="codequant",
            timeout=timeout_s,
            max_retries=0,
        )
        self.model = endpoint.model

    def check(self) -> None:
        models = self.retry.call(f"GET {self.endpoint.url}/v1/models", lambda: self.client.models.list())
        names = [m.id for m in models.data]
        if self.model is None:
            if not names:
                raise ServiceError(f"{self.endpoint.url} serves no model")
            self.model = names[0]
        elif self.model not in names:
            raise InputError(f"{self.endpoint.url} does not serve model {self.model!r} (it serves {', '.join(names)})")

    per_sample = False  # one request returns all n samples (the server decodes them as one batch)

    def sample(
        self,
        prompt: str,
        *,
        n: int,
        indices: list[int],
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
    ) -> dict[int, Sample]:
        """Samples ``indices`` of n. The whole n is requested even when resuming, so each index keeps its seed."""
        start = time.monotonic()
        response = self.retry.call(
            f"POST {self.endpoint.url}/v1/completions",
            lambda: self.client.completions.create(
                model=self.model or "",
                prompt=prompt,
                n=n,
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                stop=stop or None,
                seed=seed,
            ),
        )
        latency = time.monotonic() - start
        usage = response.usage
        choices = sorted(response.choices, key=lambda c: c.index)
        per_choice = usage.completion_tokens if usage and n == 1 else None
        return {
            i: Sample(
                choices[i].text, choices[i].finish_reason, per_choice, usage.prompt_tokens if usage else None, latency
            )
            for i in indices
        }


def client_for(endpoint: Endpoint, retry: Retry | None = None, timeout_s: float = 600.0) -> TgiClient | OpenAiClient:
    retry = retry or Retry()
    if endpoint.api == "tgi":
        return TgiClient(endpoint, retry, timeout_s)
    if endpoint.api == "openai":
        return OpenAiClient(endpoint, retry, timeout_s)
    raise InputError(f"--api must be tgi or openai, got {endpoint.api!r}")
