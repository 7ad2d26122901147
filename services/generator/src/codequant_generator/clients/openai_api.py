"""The OpenAI APIs (``api: openai``, completions; ``api: openai-chat``, chat completions) through the openai
client, the key from $OPENAI_API_KEY; vLLM, `codequant serve` and hosted endpoints speak them."""

from __future__ import annotations

import time
from typing import Any

from codequant.errors import InputError, ServiceError
from codequant.protocols import GenerationApi, get_api
from codequant.study.methods import EndpointSpec
from codequant_generator.clients.base import Client, OnRequest, Sample, register_client
from codequant_generator.retry import RejectedRequest, RequestWatch, Retry


@register_client(
    GenerationApi("openai", key_env="OPENAI_API_KEY", chat=True),
    GenerationApi("openai-chat", key_env="OPENAI_API_KEY", chat=True, prompts_as_chat=True),
)
class OpenAiClient(Client):
    """The OpenAI completions API, or with ``api: openai-chat`` the chat completions API (the prompt is the
    user's message, formatted by the server's chat template), through the openai client: one request returns
    n samples."""

    def __init__(self, endpoint: EndpointSpec, retry: Retry, watch: RequestWatch | None = None) -> None:
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
        self.chat = get_api(endpoint.api).prompts_as_chat

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
