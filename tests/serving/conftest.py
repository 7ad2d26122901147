"""One `codequant serve` on the tiny model for the serving tests that talk HTTP to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from codequant.launch import running_server


@pytest.fixture(scope="session")
def server(tiny_model: Path) -> Iterator[str]:
    with running_server(str(tiny_model), max_batch_size=16) as url:
        yield url


@pytest.fixture(scope="session")
def oai(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="none", max_retries=0)
