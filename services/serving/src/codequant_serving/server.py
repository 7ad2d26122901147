"""TGI- and OpenAI-compatible HTTP API over the continuous-batching engine."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from codequant.heldout import NAME as HELD_OUT_NAME
from codequant.heldout import held_out_texts
from codequant_serving import __name__ as _package
from codequant_serving import measure
from codequant_serving.engine import Engine
from codequant_serving.metrics import Metrics
from codequant_serving.openai_routes import add_openai_routes, openai_error
from codequant_serving.tgi_routes import MAX_STOP_SEQUENCES, add_tgi_routes, tgi_error


class PerplexityRequest(BaseModel):
    """Texts to score (default: codequant's held-out code set) and the most tokens of each that count."""

    model_config = ConfigDict(extra="forbid")
    texts: list[str] | None = Field(None, min_length=1)
    max_tokens: int | None = Field(None, ge=2)


def create_app(engine: Engine, model_id: str, *, dtype: str = "auto") -> FastAPI:
    """The HTTP app serving ``engine`` under the name ``model_id``."""
    metrics: Metrics = engine.metrics or Metrics()
    engine.metrics = metrics
    app = FastAPI(title="codequant serve", docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid request"}
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        message = f"{field}: {first['msg']}" if field else first["msg"]
        if request.url.path.startswith("/v1/"):
            metrics.requests.labels(request.url.path, "400").inc()
            return openai_error(400, message, param=field or None)
        metrics.requests.labels(request.url.path, "422").inc()
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
            "chat_template": bool(getattr(engine.tokenizer, "chat_template", None)),
        }

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.queue_size.set(engine.queue_size())
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/codequant/memory")
    async def memory() -> dict[str, Any]:
        return measure.memory(engine.model)

    @app.post("/codequant/perplexity")
    async def perplexity(body: PerplexityRequest) -> dict[str, Any]:
        texts = body.texts or held_out_texts()
        limit = min(body.max_tokens or engine.max_context, engine.max_context)
        scored = await asyncio.to_thread(measure.perplexity, engine.model, engine.tokenizer, texts, limit)
        return {**scored, "set": HELD_OUT_NAME if body.texts is None else "request", "max_tokens": limit}

    add_tgi_routes(app, engine, metrics)
    add_openai_routes(app, engine, metrics, model_id)
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
