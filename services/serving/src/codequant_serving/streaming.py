"""Bridging the engine thread to async HTTP handlers: results, token event streams, Server-Sent Events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import format_sse_event

from codequant_serving.engine import Engine, Request, Sequence, TokenEvent


async def completed(engine: Engine, request: Request) -> list[Sequence]:
    """The sequences of a request that is not streamed."""
    return await asyncio.wrap_future(engine.submit(request))


class EventStream:
    """The token events of one request, as they are decoded. The request is queued on construction (so several
    streams created together decode together); iterating ends when every sample finished and raises what
    generation raised. ``cancel`` (or leaving the iteration early) takes the request's rows out of the batch."""

    def __init__(self, engine: Engine, request: Request) -> None:
        loop = asyncio.get_running_loop()
        self.request = request
        self._events: asyncio.Queue[TokenEvent] = asyncio.Queue()
        request.on_event = lambda event: loop.call_soon_threadsafe(self._events.put_nowait, event)
        self._finished = asyncio.wrap_future(engine.submit(request))
        self._remaining = request.n

    def cancel(self) -> None:
        if self._remaining:
            self.request.cancelled = True

    async def __aiter__(self) -> AsyncIterator[TokenEvent]:
        try:
            while self._remaining:
                getter = asyncio.ensure_future(self._events.get())
                await asyncio.wait({getter, self._finished}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    self._finished.result()  # raises if generation failed
                    if self._events.empty():
                        return  # cancelled before it was decoded
                    continue
                event = getter.result()
                if event.sequence is not None:
                    self._remaining -= 1
                yield event
        finally:
            self.cancel()


def sse(payload: Any) -> bytes:
    """One Server-Sent Event whose data is ``payload`` as JSON (a string is sent as is, e.g. OpenAI's [DONE])."""
    return format_sse_event(data_str=payload if isinstance(payload, str) else json.dumps(payload))
