"""The compose stack harness itself: where no engine starts, the tests say why (the engine's own words)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.stack import EngineUnavailable, start_engine


def test_an_engine_that_cannot_start_is_reported_with_its_own_error(tmp_path: Path) -> None:
    script = tmp_path / "docker-engine.sh"
    script.write_text(
        "echo 'docker-engine: starting dockerd' \n"
        "echo 'failed to start daemon: Error initializing network controller: iptables not found' >&2\n"
        "exit 1\n"
    )
    with pytest.raises(EngineUnavailable) as raised:
        start_engine(script)
    assert str(raised.value) == "failed to start daemon: Error initializing network controller: iptables not found"


def test_an_engine_that_starts_raises_nothing(tmp_path: Path) -> None:
    script = tmp_path / "docker-engine.sh"
    script.write_text("echo 'docker-engine: engine 20.10.24, compose 2.26.1'\n")
    start_engine(script)
