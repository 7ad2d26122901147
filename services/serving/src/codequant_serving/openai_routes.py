"""OpenAI's API: /v1/models, /v1/completions and /v1/chat/completions, each streaming or not."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from codequant_serving.engine import Engine, RequestError, Sequence
from codequant_serving.engine import Request as GenRequest
from codequant_serving.metrics import Metrics
from codequant_serving.streaming import EventStream, completed, sse

MAX_STOP_SEQUENCES = 4  # as TGI's default --max-stop-sequences


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None  # any name: this server serves one model (as TGI does; its clients send "tgi", "dummy")
    n: int = Field(1, ge=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return value

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int = Field(16, ge=1)
    echo: bool = False


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls...: passed on to the chat template
    role: str
    content: str | list[ContentPart] | None = None

    def for_template(self) -> dict[str, Any]:
        message = self.model_dump(exclude_none=True)
        if isinstance(self.content, list):
            message["content"] = "".join(part.text for part in self.content)
        return message


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    # vLLM's extensions: continue the final (assistant) message instead of starting a new turn.
    continue_final_message: bool = False
    add_generation_prompt: bool = True


def openai_error(status: int, message: str, param: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": None}}, status_code=status)


def openai_text(sequence: Sequence) -> str:
    """OpenAI's text leaves out the stop sequence that ended it."""
    return sequence.text[: len(sequence.text) - len(sequence.stop)] if sequence.stop else sequence.text


def finish_reason(sequence: Sequence) -> str:
    return "length" if sequence.finish_reason == "length" else "stop"


def chat_prompt(tokenizer: Any, messages: list[ChatMessage], continue_final: bool = False) -> str:
    """The prompt the model's own chat template makes of ``messages``, ending with the assistant's turn.

    ``continue_final``: the last message is the start of the assistant's answer, and the prompt ends with it
    (verbatim, trailing whitespace kept, unless the template itself trims it) so the model continues it."""
    if not getattr(tokenizer, "chat_template", None):
        raise RequestError(
            "this model's tokenizer has no chat template, so /v1/chat/completions cannot format messages; "
            "use /v1/completions with a plain prompt"
        )
    if continue_final and messages[-1].role != "assistant":
        raise RequestError("continue_final_message needs the last message to be the assistant's")
    try:
        rendered = tokenizer.apply_chat_template(
            [m.for_template() for m in messages], tokenize=False, add_generation_prompt=not continue_final
        )
    except Exception as exc:  # jinja2 errors raised by the template itself (e.g. "roles must alternate")
        raise RequestError(f"the model's chat template rejected the messages: {exc}") from None
    if not continue_final:
        return rendered
    final = messages[-1].for_template().get("content") or ""
    for text in (final, final.strip()):
        at = rendered.rfind(text)
        if text and at >= 0:
            return rendered[: at + len(text)]
    raise RequestError("the model's chat template does not write the final message, so it cannot be continued")


def held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters of ``text`` could be the start of a stop sequence (not sent yet)."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class _Choice:
    """What one streamed choice has sent so far."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.raw = ""
        self.sent = ""

    def delta(self, text: str, sequence: Sequence | None) -> str:
        if sequence is not None:
            final = openai_text(sequence)
            delta = final[len(self.sent) :] if final.startswith(self.sent) else ""
        else:
            self.raw += text
            safe = self.raw[: len(self.raw) - held_back(self.raw, self.stops)]
            delta = safe[len(self.sent) :]
        self.sent += delta
        return delta


def add_openai_routes(app: FastAPI, engine: Engine, metrics: Metrics, model_id: str) -> None:
    created = int(time.time())

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "codequant"}],
        }

    def rejected(route: str, status: int, message: str, param: str | None) -> JSONResponse:
        metrics.requests.labels(route, str(status)).inc()
        return openai_error(status, message, param=param)

    def gen_request(body: _Sampling, prompt: str, max_tokens: int | None, prompt_ids: list[int] | None = None):
        return GenRequest(
            prompt=prompt,
            n=body.n,
            max_new_tokens=max_tokens or 1,
            temperature=body.temperature,
            top_p=body.top_p,
            do_sample=body.temperature > 0,
            stop=body.stops(),
            seed=body.seed,
            prompt_ids=prompt_ids or [],
        )

    def usage(requests: list[GenRequest], results: list[list[Sequence]]) -> dict[str, int]:
        prompt_tokens = sum(len(r.prompt_ids) for r in requests)
        completion_tokens = sum(s.generated_tokens for sequences in results for s in sequences)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    async def respond(
        route: str,
        body: _Sampling,
        requests: list[GenRequest],
        kind: str,
        choice: Callable[[int, Sequence], dict[str, Any]],
        chunk: Callable[[int, str, str | None], dict[str, Any]],
        opening: Callable[[int], dict[str, Any]] | None = None,
    ) -> Response:
        """Run ``requests`` (one per prompt, n samples each) and answer in one body or as a stream of chunks."""
        start = time.monotonic()
        response_id = f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}"
        envelope = {"id": response_id, "created": int(time.time()), "model": model_id}
        if not body.stream:
            results = await asyncio.gather(*(completed(engine, r) for r in requests))
            # completion_tokens per choice (a codequant extension): usage sums the n samples of a request.
            choices = [
                {**choice(p * body.n + j, s), "completion_tokens": s.generated_tokens}
                for p, samples in enumerate(results)
                for j, s in enumerate(samples)
            ]
            metrics.requests.labels(route, "200").inc()
            metrics.request_seconds.labels(route).observe(time.monotonic() - start)
            return JSONResponse({**envelope, "object": kind, "choices": choices, "usage": usage(requests, results)})
        streams = [EventStream(engine, r) for r in requests]  # all submitted now, so they decode together

        async def events() -> AsyncIterator[bytes]:
            results: list[list[Sequence]] = []
            try:
                for p, stream in enumerate(streams):
                    choices = [_Choice(requests[p].stop) for _ in range(body.n)]
                    finished: dict[int, Sequence] = {}
                    for j in range(body.n if opening is not None else 0):
                        yield sse({**envelope, **opening(p * body.n + j)})  # type: ignore[misc]
                    async for event in stream:
                        delta = choices[event.index].delta(event.text, event.sequence)
                        reason = None
                        if event.sequence is not None:
                            finished[event.index] = event.sequence
                            reason = finish_reason(event.sequence)
                        if delta or reason:
                            yield sse({**envelope, **chunk(p * body.n + event.index, delta, reason)})
                    results.append([finished[j] for j in range(body.n)])
            except Exception as exc:  # headers are sent: report the failure in the stream
                metrics.requests.labels(route, "500").inc()
                yield sse({"error": {"message": f"generation failed: {exc}", "type": "server_error"}})
                return
            finally:
                for stream in streams:
                    stream.cancel()
            if body.stream_options is not None and body.stream_options.include_usage:
                kind_of_chunk = "chat.completion.chunk" if kind == "chat.completion" else kind
                yield sse({**envelope, "object": kind_of_chunk, "choices": [], "usage": usage(requests, results)})
            yield sse("[DONE]")
            metrics.requests.labels(route, "200").inc()
            metrics.request_seconds.labels(route).observe(time.monotonic() - start)

        return EventSourceResponse(events())

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest) -> Response:
        route = "/v1/completions"
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if not prompts or any(not p for p in prompts):
            return rejected(route, 400, "prompt must be a non-empty string or list of non-empty strings", "prompt")
        requests = [gen_request(body, p, body.max_tokens) for p in prompts]
        try:
            for request in requests:
                engine.validate(request)
        except RequestError as exc:
            return rejected(route, 400, str(exc), "prompt")

        def choice(index: int, sequence: Sequence) -> dict[str, Any]:
            text = openai_text(sequence)
            if body.echo:
                text = prompts[index // body.n] + text
            return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason(sequence)}

        def chunk(index: int, text: str, reason: str | None) -> dict[str, Any]:
            return {
                "object": "text_completion",
                "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": reason}],
            }

        def echo(index: int) -> dict[str, Any]:
            return chunk(index, prompts[index // body.n], None)

        return await respond(route, body, requests, "text_completion", choice, chunk, echo if body.echo else None)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatRequest) -> Response:
        route = "/v1/chat/completions"
        try:
            if body.continue_final_message and body.add_generation_prompt:
                raise RequestError("continue_final_message needs add_generation_prompt: false")
            prompt = chat_prompt(engine.tokenizer, body.messages, body.continue_final_message)
            # The template writes the special tokens (BOS...) itself.
            prompt_ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            max_tokens = body.max_completion_tokens or body.max_tokens or engine.max_context - len(prompt_ids)
            request = gen_request(body, prompt, max(1, max_tokens), prompt_ids)
            engine.validate(request)
        except RequestError as exc:
            return rejected(route, 400, str(exc), "messages")

        def choice(index: int, sequence: Sequence) -> dict[str, Any]:
            return {
                "index": index,
                "message": {"role": "assistant", "content": openai_text(sequence)},
                "logprobs": None,
                "finish_reason": finish_reason(sequence),
            }

        def chunk(index: int, text: str, reason: str | None, delta: dict[str, Any] | None = None) -> dict[str, Any]:
            delta = delta or ({"content": text} if text else {})
            return {
                "object": "chat.completion.chunk",
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}],
            }

        def role(index: int) -> dict[str, Any]:
            return chunk(index, "", None, {"role": "assistant", "content": ""})

        return await respond(route, body, [request], "chat.completion", choice, chunk, role)
