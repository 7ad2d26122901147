"""The serving service's public entry points beside `codequant serve`: a model loaded as the server loads it, and
the engine the server drives (requests submitted, futures of their samples), for tools and benchmarks."""

from __future__ import annotations

from codequant_serving.engine import Engine, Request
from codequant_serving.loading import load_model, single_thread_numba

__all__ = ["Engine", "Request", "load_model", "single_thread_numba"]
