"""TGI- and OpenAI-compatible HTTP API over the batching engine."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from codequant_serving import __name__ as _package
from codequant_serving.engine import Engine, RequestError
from codequant_serving.engine import Request as GenRequest
from codequant_serving.metrics import Metrics

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


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    prompt: str | list[str]
    n: int = Field(1, ge=1)
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    echo: bool = False

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value


def tgi_error(status: int, message: str, kind: str = "validation") -> JSONResponse:
    return JSONResponse({"error": message, "error_type": kind}, status_code=status)


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}}, status_code=status)


def create_app(engine: Engine, model_id: str, *, dtype: str = "auto") -> FastAPI:
    """The HTTP app serving ``engine`` under the name ``model_id``."""
    metrics: Metrics = engine.metrics or Metrics()
    engine.metrics = metrics
    app = FastAPI(title="codequant serve", docs_url=None, redoc_url=None)
    created = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        message = f"{field}: {first['msg']}" if field else first["msg"]
        metrics.requests.labels(request.url.path, "422").inc()
        if request.url.path.startswith("/v1/"):
            return openai_error(400, message, param=field or None)
        return tgi_error(422, message)

    @app.get("/health")
    async def health() -> Response:
        if not engine.alive:
            return tgi_error(503, "generation thread stopped", "unhealthy")
        return Response(status_code=200)

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return {
            "model_id": model_id,
            "model_dtype": str(next(engine.model.parameters()).dtype).removeprefix("torch."),
            "model_device_type": engine.device.type,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 1,
            "max_stop_sequences": MAX_STOP_SEQUENCES,
            "max_input_tokens": engine.max_context - 1,
            "max_total_tokens": engine.max_context,
            "max_batch_size": engine.max_batch_size,
            "router": "codequant",
            "version": _version(),
            "quantize": _quantization(engine),
            "requested_dtype": dtype,
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queue_size.set(engine.queue_size())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def run(request: GenRequest) -> list[Any]:
        return await asyncio.wrap_future(engine.submit(request))

    async def tgi_generate(body: TgiRequest, route: str) -> JSONResponse:
        start = time.monotonic()
        if body.stream:
            return tgi_error(422, "streaming is not supported by this server; send stream=false")
        p = body.parameters
        do_sample = p.do_sample or (p.temperature is not None and p.temperature != 1.0) or p.top_p is not None
        request = GenRequest(
            prompt=body.inputs,
            n=1,
            max_new_tokens=p.max_new_tokens,
            temperature=p.temperature or 1.0,
            top_p=p.top_p or 1.0,
            do_sample=do_sample,
            stop=p.stop,
            seed=p.seed,
        )
        try:
            engine.validate(request)
        except RequestError as exc:
            metrics.requests.labels(route, "422").inc()
            return tgi_error(422, str(exc))
        (sequence,) = await run(request)
        metrics.requests.labels(route, "200").inc()
        metrics.request_seconds.labels(route).observe(time.monotonic() - start)
        text = (body.inputs + sequence.text) if p.return_full_text else sequence.text
        payload: dict[str, Any] = {"generated_text": text}
        if p.details:
            payload["details"] = {
                "finish_reason": sequence.finish_reason,
                "generated_tokens": sequence.generated_tokens,
                "seed": sequence.seed,
                "prefill": [],
                "tokens": [],
            }
        return JSONResponse(payload)

    @app.post("/generate")
    async def generate(body: TgiRequest) -> JSONResponse:
        return await tgi_generate(body, "/generate")

    @app.post("/")
    async def compat(body: TgiRequest) -> JSONResponse:
        # TGI's compatibility route: what huggingface_hub's InferenceClient posts to for a TGI URL.
        response = await tgi_generate(body, "/")
        if response.status_code == 200:
            import json

            return JSONResponse([json.loads(response.body)])
        return response

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "codequant"}],
        }

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> JSONResponse:
        start = time.monotonic()
        if body.model != model_id:
            metrics.requests.labels("/v1/completions", "404").inc()
            return openai_error(
                404,
                f"The model `{body.model}` does not exist; this server serves `{model_id}`",
                param="model",
                code="model_not_found",
            )
        if body.stream:
            return openai_error(400, "stream=true is not supported by this server", param="stream")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts or any(not p for p in prompts):
            return openai_error(400, "prompt must be a non-empty string or list of non-empty strings", param="prompt")
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        requests = [
            GenRequest(
                prompt=p,
                n=body.n,
                max_new_tokens=body.max_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                do_sample=body.temperature > 0,
                stop=stops,
                seed=body.seed,
            )
            for p in prompts
        ]
        try:
            for request in requests:
                engine.validate(request)
        except RequestError as exc:
            metrics.requests.labels("/v1/completions", "400").inc()
            return openai_error(400, str(exc), param="prompt")
        results = await asyncio.gather(*(run(r) for r in requests))
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for p_index, sequences in enumerate(results):
            prompt_tokens += len(requests[p_index].prompt_ids)
            for sequence in sequences:
                text = sequence.text[: len(sequence.text) - len(sequence.stop)] if sequence.stop else sequence.text
                choices.append(
                    {
                        "text": (prompts[p_index] + text) if body.echo else text,
                        "index": len(choices),
                        "logprobs": None,
                        "finish_reason": "length" if sequence.finish_reason == "length" else "stop",
                    }
                )
                completion_tokens += sequence.generated_tokens
        metrics.requests.labels("/v1/completions", "200").inc()
        metrics.request_seconds.labels("/v1/completions").observe(time.monotonic() - start)
        return JSONResponse(
            {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "text_completion",
                "created": int(time.time()),
                "model": model_id,
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    return app


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version(_package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return "unknown"


def _quantization(engine: Engine) -> str | None:
    config = getattr(engine.model.config, "quantization_config", None)
    if config is None:
        return None
    return config.get("quant_method") if isinstance(config, dict) else getattr(config, "quant_method", None)
