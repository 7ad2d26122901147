"""Endpoint clients: TGI (huggingface_hub.InferenceClient) and OpenAI-compatible completions or chat (openai),
with credentials from the environment, retries that honour 429 Retry-After, and a concurrency cap per endpoint."""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx

from codequant.errors import InputError, ServiceError

log = logging.getLogger(__name__)
T = TypeVar("T")
APIS = ("tgi", "openai", "openai-chat")


#: Called once per HTTP request a client sent: (latency in seconds, completion tokens of all the samples it
#: generated, None when the server does not say).
OnRequest = Callable[[float, int | None], None]


@dataclass(frozen=True)
class Endpoint:
    """A TGI, vLLM, OpenAI-compatible or hosted server.

    Secrets never live here: ``api_key_env`` and ``headers_env`` name environment variables that hold them.
    """

    url: str
    api: Literal["tgi", "openai", "openai-chat"] = "tgi"
    model: str | None = None  # the OpenAI API's model name (default: the server's first model)
    api_key_env: str | None = None  # environment variable holding the API key (sent as a Bearer token)
    headers_env: dict[str, str] = field(default_factory=dict, hash=False)  # header name -> environment variable
    max_concurrency: int | None = None  # requests in flight to this endpoint from this process, at most

    def credentials(self) -> tuple[str | None, dict[str, str]]:
        """(API key, extra headers) read from the environment; InputError naming a variable that is not set."""
        missing = [name for name in [self.api_key_env, *self.headers_env.values()] if name and name not in os.environ]
        if missing:
            raise InputError(
                f"endpoint {self.url}: environment variable {', '.join(missing)} is not set "
                "(named by api_key_env / headers_env)"
            )
        key = os.environ[self.api_key_env] if self.api_key_env else None
        return key, {header: os.environ[name] for header, name in self.headers_env.items()}


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
    """Exponential backoff for connection errors and 5xx answers; a 429 waits what its Retry-After says."""

    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 300.0  # a longer Retry-After fails at once rather than stall the study

    def call(self, what: str, fn: Callable[[], T]) -> T:
        delay = self.first_delay_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except Exception as exc:
                status = _status(exc)
                if status == 429:
                    wait = retry_after(exc)
                    if wait is not None and wait > self.max_retry_after_s:
                        raise ServiceError(
                            f"{what}: rate limited (HTTP 429) and asked to retry after {wait:.0f} s, longer than "
                            f"the {self.max_retry_after_s:.0f} s this client waits"
                        ) from None
                    if attempt == self.attempts:
                        raise ServiceError(f"{what}: still rate limited (HTTP 429) after {attempt} attempts") from None
                    pause = delay if wait is None else wait
                elif _transient(exc) and attempt < self.attempts:
                    pause = delay
                else:
                    raise _as_service_error(what, exc, attempt) from None
                log.warning(
                    "%s failed (%s); retry %d/%d in %.1f s", what, _describe(exc), attempt, self.attempts - 1, pause
                )
                time.sleep(pause)
                delay = min(self.max_delay_s, delay * 2)
        raise AssertionError("unreachable")


def retry_after(exc: Exception) -> float | None:
    """Seconds to wait from a 429's ``retry-after-ms`` or ``Retry-After`` header (seconds or an HTTP date)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if not value:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return float(value)
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


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


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def endpoint_slots(endpoint: Endpoint) -> threading.BoundedSemaphore | None:
    """The process-wide semaphore capping requests in flight to ``endpoint`` (None when uncapped)."""
    if not endpoint.max_concurrency:
        return None
    key = (endpoint.url.rstrip("/"), endpoint.max_concurrency)
    with _slots_lock:
        return _slots.setdefault(key, threading.BoundedSemaphore(endpoint.max_concurrency))


class _Client:
    per_sample = False

    def __init__(self, endpoint: Endpoint, retry: Retry) -> None:
        self.endpoint = endpoint
        self.retry = retry
        self.slots = endpoint_slots(endpoint)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with retries, each attempt holding one of the endpoint's slots."""
        if self.slots is None:
            return self.retry.call(what, fn)
        slots = self.slots

        def limited() -> T:
            with slots:
                return fn()

        return self.retry.call(what, limited)


class TgiClient(_Client):
    """TGI's /generate through huggingface_hub.InferenceClient, one sample per request."""

    per_sample = True  # one request per sample: spread samples over concurrent requests

    def __init__(self, endpoint: Endpoint, retry: Retry, timeout_s: float) -> None:
        from huggingface_hub import InferenceClient

        super().__init__(endpoint, retry)
        key, self.headers = endpoint.credentials()
        if key:
            self.headers = {"Authorization": f"Bearer {key}", **self.headers}
        self.client = InferenceClient(model=endpoint.url.rstrip("/"), timeout=timeout_s, headers=self.headers)

    def check(self) -> None:
        url = f"{self.endpoint.url.rstrip('/')}/health"
        self._call(f"GET {url}", lambda: httpx.get(url, headers=self.headers, timeout=10).raise_for_status())

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
        on_request: OnRequest | None = None,
    ) -> dict[int, Sample]:
        """Samples ``indices`` of n, one request each; sample i is requested with seed + i."""
        samples = {}
        for index in indices:
            start = time.monotonic()
            sampling = temperature > 0
            output: Any = self._call(
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
            latency = time.monotonic() - start
            tokens = output.details.generated_tokens
            samples[index] = Sample(output.generated_text, str(output.details.finish_reason), tokens, None, latency)
            if on_request is not None:
                on_request(latency, tokens)
        return samples


class OpenAiClient(_Client):
    """The OpenAI completions API, or with ``api: openai-chat`` the chat completions API (the prompt is the
    user's message, formatted by the server's chat template), through the openai client: one request returns
    all n samples."""

    def __init__(self, endpoint: Endpoint, retry: Retry, timeout_s: float) -> None:
        import openai

        super().__init__(endpoint, retry)
        key, headers = endpoint.credentials()
        base = endpoint.url.rstrip("/")
        self.client = openai.OpenAI(
            base_url=base if base.endswith("/v1") else f"{base}/v1",
            api_key=key or "codequant",
            default_headers=headers or None,
            timeout=timeout_s,
            max_retries=0,  # retries are ours (Retry), so a 429's Retry-After is honoured and bounded
        )
        self.model = endpoint.model
        self.chat = endpoint.api == "openai-chat"

    def check(self) -> None:
        try:
            models = self._call(f"GET {self.endpoint.url}/v1/models", lambda: self.client.models.list())
        except ServiceError:
            if self.model is None:
                raise
            return  # some hosted endpoints do not list models; the named one is checked by the first request
        names = [m.id for m in models.data]
        if self.model is None:
            if not names:
                raise ServiceError(f"{self.endpoint.url} serves no model")
            self.model = names[0]
        elif self.model not in names:
            raise InputError(f"{self.endpoint.url} does not serve model {self.model!r} (it serves {', '.join(names)})")

    def sample(
        self,
        prompt: str | list[dict[str, str]],
        *,
        n: int,
        indices: list[int],
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
        on_request: OnRequest | None = None,
    ) -> dict[int, Sample]:
        """Samples ``indices`` of n in one request. The whole n is requested even when resuming, so each index keeps
        its seed.

        ``prompt`` as chat messages goes to the chat completions API whatever the endpoint's api; when they end with
        the assistant's, the answer continues it (vLLM's ``continue_final_message``, which `codequant serve` has).
        """
        start = time.monotonic()
        common: dict[str, Any] = {
            "model": self.model or "",
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_new_tokens,
            "stop": stop or None,
            "seed": seed,
        }
        chat = self.chat or isinstance(prompt, list)
        if chat:
            route = "/v1/chat/completions"
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            if messages[-1]["role"] == "assistant":
                common["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
            response = self._call(
                f"POST {self.endpoint.url}{route}",
                lambda: self.client.chat.completions.create(messages=messages, **common),  # type: ignore[arg-type]
            )
        else:
            route = "/v1/completions"
            response = self._call(
                f"POST {self.endpoint.url}{route}",
                lambda: self.client.completions.create(prompt=prompt, **common),  # type: ignore[arg-type]
            )
        latency = time.monotonic() - start
        usage = response.usage
        choices = sorted(response.choices, key=lambda c: c.index)
        if len(choices) < n:
            raise ServiceError(f"POST {self.endpoint.url}{route}: asked for n={n} samples, got {len(choices)}")
        total = usage.completion_tokens if usage else None
        texts = [(c.message.content or "") if chat else c.text for c in choices]  # type: ignore[union-attr]
        prompt_tokens = usage.prompt_tokens if usage else None
        if on_request is not None:
            on_request(latency, total)
        return {
            i: Sample(texts[i], choices[i].finish_reason, _choice_tokens(choices[i], n, total), prompt_tokens, latency)
            for i in indices
        }


def _choice_tokens(choice: Any, n: int, request_total: int | None) -> int | None:
    """Completion tokens of one choice: `codequant serve` says them per choice; otherwise only usage's total of
    the request is known, which is the choice's own when the request asked for one sample."""
    own = (getattr(choice, "model_extra", None) or {}).get("completion_tokens")
    if isinstance(own, int):
        return own
    return request_total if n == 1 else None


def client_for(endpoint: Endpoint, retry: Retry | None = None, timeout_s: float = 600.0) -> TgiClient | OpenAiClient:
    retry = retry or Retry()
    if endpoint.api == "tgi":
        return TgiClient(endpoint, retry, timeout_s)
    if endpoint.api in ("openai", "openai-chat"):
        return OpenAiClient(endpoint, retry, timeout_s)
    raise InputError(f"--api must be one of {', '.join(APIS)}, got {endpoint.api!r}")
