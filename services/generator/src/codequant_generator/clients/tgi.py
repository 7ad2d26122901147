"""TGI's API (``api: tgi``): /generate through huggingface_hub.InferenceClient, the key from $HF_TOKEN."""

from __future__ import annotations

import time
from typing import Any

import httpx

from codequant.protocols import GenerationApi
from codequant.study.methods import EndpointSpec
from codequant_generator.clients.base import Client, OnRequest, Sample, register_client
from codequant_generator.retry import RequestWatch, Retry


@register_client(GenerationApi("tgi", key_env="HF_TOKEN"))
class TgiClient(Client):
    """TGI's /generate through huggingface_hub.InferenceClient, one sample per request."""

    per_sample = True  # one request per sample: spread samples over concurrent requests

    def __init__(self, endpoint: EndpointSpec, retry: Retry, watch: RequestWatch | None = None) -> None:
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
