"""The compose stack tests share: one stack for tests/deploy, built and brought up once, torn down after the
last of them (not at the end of the whole session, so the rest of the suite runs without it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant.queues import QUEUES
from tests.deploy.stack import EngineUnavailable, Stack, build_images, start_engine

#: Developing the stack's tests: the env file of a stack left running (its project is the file's stem), which the
#: tests then use as it is, without building, starting or removing anything.
ATTACH_ENV = "CODEQUANT_TEST_STACK_ENV"
#: The workers compose.yaml starts, by queue: one each (the stack is usable once they all answer).
WORKERS = {queue: 1 for queue in QUEUES}


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The codequant stack as `make images` and `docker compose up` deploy it on this host (the CPU and, without
    a registry, offline compose files), with fresh passwords and API token; API on 127.0.0.1. Skipped, with
    the engine's own error, where no Docker engine can be started."""
    if os.environ.get(ATTACH_ENV):
        yield Stack.attach(Path(os.environ[ATTACH_ENV]))
        return
    try:
        start_engine()
    except EngineUnavailable as exc:
        pytest.skip(f"no Docker engine could be started here: {exc}")
    files = build_images()
    stack = Stack.create(f"codequant-test-{os.getpid()}", files, tmp_path_factory.mktemp("compose"))
    try:
        stack.up_seconds = stack.up(timeout=900)
        stack.wait_for_workers(WORKERS)
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="package")
def tiny_model_in_stack(stack: Stack, tiny_model: Path) -> Path:
    """The CI-sized tiny model (built or cached on the host) placed in the stack's model cache, where the
    quantizer looks for `builtin: tiny-code` before it trains one."""
    stack.put_folder("quantizer", tiny_model, f"/models/cache/models/{tiny_model.name}")
    return tiny_model
