"""One `codequant serve` on the tiny model for the generator tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.launch import running_server


@pytest.fixture(scope="session")
def server(tiny_model: Path) -> Iterator[str]:
    with running_server(str(tiny_model)) as url:
        yield url
