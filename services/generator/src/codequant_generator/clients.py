"""Endpoint clients: TGI (huggingface_hub.InferenceClient) and OpenAI-compatible completions or chat (openai),
with credentials from the environment, retries (``codequant_generator.retry``), a time limit per request and a
concurrency cap per endpoint."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx

from codequant.errors import InputError, ServiceError
from codequant.study.methods import DEFAULT_REQUEST_TIMEOUT_S, DEFAULT_SAMPLES_PER_REQUEST
from codequant_generator.retry import RejectedRequest, RequestWatch, Retry

T = TypeVar("T")
APIS = ("tgi", "openai", "openai-chat")
#: The variable each API's own clients read the key from, used when the endpoint names none.
CONVENTIONAL_KEY_ENV = {"tgi": "HF_TOKEN", "openai": "OPENAI_API_KEY", "openai-chat": "OPENAI_API_KEY"}


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
    api_key_env: str | None = None  # environment variable holding the API key (default: the API's conventional one)
    headers_env: dict[str, str] = field(default_factory=dict, hash=False)  # header name -> environment variable
    max_concurrency: int | None = None  # requests in flight to this endpoint from this process, at most
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S  # per attempt of a request
    samples_per_request: int = DEFAULT_SAMPLES_PER_REQUEST  # OpenAI APIs: a problem's n is split into such requests

    def key_variable(self) -> str | None:
        """The variable the API key is read from: ``api_key_env``, else the API's conventional one when it is set
        (OPENAI_API_KEY, HF_TOKEN), else None (no key is sent)."""
        if self.api_key_env:
            return self.api_key_env
        conventional = CONVENTIONAL_KEY_ENV.get(self.api)
        return conventional if conventional and os.environ.get(conventional) else None

    def credentials(self) -> tuple[str | None, dict[str, str]]:
        """(API key, extra headers) read from the environment; InputError naming a variable that is not set."""
        missing = [name for name in [self.api_key_env, *self.headers_env.values()] if name and name not in os.environ]
        if missing:
            raise InputError(
                f"endpoint {self.url}: environment variable {', '.join(missing)} is not set "
                "(named by api_key_env / headers_env)"
            )
        variable = self.key_variable()
        key = os.environ[variable] if variable else None
        return key, {header: os.environ[name] for header, name in self.headers_env.items()}

    def auth_hint(self) -> str:
        """What to do when the endpoint refuses the request's credentials (HTTP 401/403)."""
        variable = self.key_variable()
        if variable:
            return (
                f"the API key in ${variable} was refused: set it to a valid key, or name the variable that holds one "
                "with --api-key-env (study: endpoint.api_key_env)"
            )
        conventional = CONVENTIONAL_KEY_ENV.get(self.api, "OPENAI_API_KEY")
        return (
            f"no API key was sent: set ${conventional}, or name the variable that holds the key with --api-key-env "
            "(study: endpoint.api_key_env)"
        )


@dataclass(frozen=True)
class Sample:
    """One generated text as the server returned it."""

    text: str
    finish_reason: str | None
    completion_tokens: int | None
    prompt_tokens: int | None
    latency_s: float


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

    def __init__(self, endpoint: Endpoint, retry: Retry, watch: RequestWatch | None) -> None:
        self.endpoint = endpoint
        self.retry = retry
        self.watch = watch
        self.slots = endpoint_slots(endpoint)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn`` with retries, each attempt holding one of the endpoint's slots."""
        limited = fn
        if self.slots is not None:
            slots = self.slots

            def limited() -> T:
                with slots:
                    return fn()

        return self.retry.call(
            what,
            limited,
            timeout_s=self.endpoint.request_timeout_s,
            auth_hint=self.endpoint.auth_hint(),
            watch=self.watch,
        )


class TgiClient(_Client):
    """TGI's /generate through huggingface_hub.InferenceClient, one sample per request."""

    per_sample = True  # one request per sample: spread samples over concurrent requests

    def __init__(self, endpoint: Endpoint, retry: Retry, watch: RequestWatch | None = None) -> None:
        from huggingface_hub import InferenceClient

        super().__init__(endpoint, retry, watch)
        key, self.headers = endpoint.credentials()
        if key:
            self.headers = {"Authorization": f"Bearer {key}", **self.headers}
        self.client = InferenceClient(
            model=endpoint.url.rstrip("/"), timeout=endpoint.request_timeout_s, headers=self.headers
        )

    def check(self) -> None:
        url = f"{self.endpoint.url.rstrip('/')}/health"
        timeout = min(10.0, self.endpoint.request_timeout_s)
        self._call(f"GET {url}", lambda: httpx.get(url, headers=self.headers, timeout=timeout).raise_for_status())

    def sample(
        self,
        prompt: str,
        *,
        n: int,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
        on_request: OnRequest | None = None,
    ) -> list[Sample]:
        """One sample (TGI has no n) drawn with ``seed``."""
        if n != 1:
            raise ValueError("TGI's API returns one sample per request")
        start = time.monotonic()
        sampling = temperature > 0
        output: Any = self._call(
            f"POST {self.endpoint.url}",
            lambda: self.client.text_generation(
                prompt,
                max_new_tokens=max_new_tokens,
                do_sample=sampling,
                temperature=temperature if sampling else None,
                top_p=top_p if sampling and top_p < 1 else None,
                stop=stop,
                seed=seed,
                details=True,
            ),
        )
        latency = time.monotonic() - start
        tokens = output.details.generated_tokens
        if on_request is not None:
            on_request(latency, tokens)
        return [Sample(output.generated_text, str(output.details.finish_reason), tokens, None, latency)]


class OpenAiClient(_Client):
    """The OpenAI completions API, or with ``api: openai-chat`` the chat completions API (the prompt is the
    user's message, formatted by the server's chat template), through the openai client: one request returns
    n samples."""

    def __init__(self, endpoint: Endpoint, retry: Retry, watch: RequestWatch | None = None) -> None:
        import openai

        super().__init__(endpoint, retry, watch)
        key, headers = endpoint.credentials()
        base = endpoint.url.rstrip("/")
        self.client = openai.OpenAI(
            base_url=base if base.endswith("/v1") else f"{base}/v1",
            api_key=key or "codequant",  # the client needs one; a server that checks keys answers 401 (auth_hint)
            default_headers=headers or None,
            timeout=endpoint.request_timeout_s,
            max_retries=0,  # retries are ours (Retry), so a 429's Retry-After is honoured and bounded
        )
        self.model = endpoint.model
        self.chat = endpoint.api == "openai-chat"

    def check(self) -> None:
        try:
            models = self._call(f"GET {self.endpoint.url}/v1/models", lambda: self.client.models.list())
        except (InputError, ServiceError) as exc:
            if self.model is None or (isinstance(exc, RejectedRequest) and exc.refused_credentials):
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
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        stop: list[str],
        seed: int,
        on_request: OnRequest | None = None,
    ) -> list[Sample]:
        """``n`` samples drawn in one request with ``seed``.

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
        return [
            Sample(texts[i], choices[i].finish_reason, _choice_tokens(choices[i], n, total), prompt_tokens, latency)
            for i in range(n)
        ]


def _choice_tokens(choice: Any, n: int, request_total: int | None) -> int | None:
    """Completion tokens of one choice: `codequant serve` says them per choice; otherwise only usage's total of
    the request is known, which is the choice's own when the request asked for one sample."""
    own = (getattr(choice, "model_extra", None) or {}).get("completion_tokens")
    if isinstance(own, int):
        return own
    return request_total if n == 1 else None


def client_for(
    endpoint: Endpoint, retry: Retry | None = None, watch: RequestWatch | None = None
) -> TgiClient | OpenAiClient:
    """The client of ``endpoint``'s API; ``watch`` sees its requests in flight."""
    retry = retry or Retry()
    if endpoint.api == "tgi":
        return TgiClient(endpoint, retry, watch)
    if endpoint.api in ("openai", "openai-chat"):
        return OpenAiClient(endpoint, retry, watch)
    raise InputError(f"--api must be one of {', '.join(APIS)}, got {endpoint.api!r}")
