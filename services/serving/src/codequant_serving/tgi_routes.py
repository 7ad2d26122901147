"""TGI's text-generation API: /generate, /generate_stream and the compatibility route / (what
huggingface_hub's InferenceClient posts to, streaming or not)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field

from codequant_serving.engine import Engine, RequestError, Sequence
from codequant_serving.engine import Request as GenRequest
from codequant_serving.metrics import Metrics
from codequant_serving.streaming import EventStream, completed, sse

MAX_STOP_SEQUENCES = 4  # TGI's default --max-stop-sequences


class TgiParameters(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_new_tokens: int = Field(20, ge=1)
    temperature: float | None = Field(None, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    do_sample: bool = False
    stop: list[str] = Field(default_factory=list, max_length=MAX_STOP_SEQUENCES)
    seed: int | None = Field(None, ge=0)
    details: bool = False
    best_of: int | None = Field(None, ge=1, le=1)
    return_full_text: bool = False


class TgiRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    inputs: str = Field(min_length=1)
    parameters: TgiParameters = Field(default_factory=TgiParameters)
    stream: bool = False


def tgi_error(status: int, message: str, kind: str = "validation") -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status)


def add_tgi_routes(app: FastAPI, engine: Engine, metrics: Metrics) -> None:
    def make_request(body: TgiRequest) -> GenRequest:
        p = body.parameters
        do_sample = p.do_sample or (p.temperature is not None and p.temperature != 1.0) or p.top_p is not None
        return GenRequest(
            prompt=body.inputs,
            n=1,
            max_new_tokens=p.max_new_tokens,
            temperature=p.temperature or 1.0,
            top_p=p.top_p or 1.0,
            do_sample=do_sample,
            stop=p.stop,
            seed=p.seed,
        )

    def validated(body: TgiRequest, route: str) -> GenRequest | JSONResponse:
        request = make_request(body)
        try:
            engine.validate(request)
        except RequestError as exc:
            metrics.requests.labels(route, "422").inc()
            return tgi_error(422, str(exc))
        return request

    def generated_text(body: TgiRequest, sequence: Sequence) -> str:
        return (body.inputs + sequence.text) if body.parameters.return_full_text else sequence.text

    async def generate(body: TgiRequest, route: str) -> JSONResponse:
        start = time.monotonic()
        request = validated(body, route)
        if isinstance(request, JSONResponse):
            return request
        (sequence,) = await completed(engine, request)
        metrics.requests.labels(route, "200").inc()
        metrics.request_seconds.labels(route).observe(time.monotonic() - start)
        payload: dict[str, Any] = {"generated_text": generated_text(body, sequence)}
        if body.parameters.details:
            payload["details"] = {
                "finish_reason": sequence.finish_reason,
                "generated_tokens": sequence.generated_tokens,
                "seed": sequence.seed,
                "prefill": [],
                "tokens": [],
            }
        return JSONResponse(payload)

    def stream(body: TgiRequest, route: str) -> Response:
        """TGI's stream: one event per token; the last one also carries generated_text (and details if asked)."""
        start = time.monotonic()
        request = validated(body, route)
        if isinstance(request, JSONResponse):
            return request

        events_of = EventStream(engine, request)

        async def events() -> AsyncIterator[bytes]:
            try:
                async for event in events_of:
                    payload: dict[str, Any] = {
                        "index": event.position,
                        "token": {
                            "id": event.token_id,
                            "text": event.text,
                            "logprob": event.logprob,
                            "special": event.special,
                        },
                        "generated_text": None,
                        "details": None,
                        "top_tokens": None,
                    }
                    if event.sequence is not None:
                        payload["generated_text"] = generated_text(body, event.sequence)
                        if body.parameters.details:
                            payload["details"] = {
                                "finish_reason": event.sequence.finish_reason,
                                "generated_tokens": event.sequence.generated_tokens,
                                "input_length": event.sequence.prompt_tokens,
                                "seed": event.sequence.seed,
                            }
                    yield sse(payload)
            except Exception as exc:  # headers are sent: report the failure as TGI does, in the stream
                metrics.requests.labels(route, "500").inc()
                yield sse({"error": f"generation failed: {exc}", "error_type": "generation"})
                return
            metrics.requests.labels(route, "200").inc()
            metrics.request_seconds.labels(route).observe(time.monotonic() - start)

        return EventSourceResponse(events())

    @app.post("/generate")
    async def generate_route(body: TgiRequest) -> JSONResponse:
        if body.stream:
            metrics.requests.labels("/generate", "422").inc()
            return tgi_error(422, "/generate does not stream; POST to /generate_stream for streaming")
        return await generate(body, "/generate")

    @app.post("/generate_stream")
    async def generate_stream_route(body: TgiRequest) -> Response:
        return stream(body, "/generate_stream")

    @app.post("/")
    async def compat_route(body: TgiRequest) -> Response:
        # TGI's compatibility route: huggingface_hub's InferenceClient posts here for a TGI URL.
        if body.stream:
            return stream(body, "/")
        response = await generate(body, "/")
        if response.status_code == 200:
            return Response(b"[" + response.body + b"]", media_type="application/json")
        return response
