"""Where a verdict came from: the executor's version, the sandbox layers in effect, the toolchains' versions, the
limits and, in a container, the image digest (``$CODEQUANT_IMAGE_DIGEST``, set by the image build)."""

from __future__ import annotations

import functools
import os
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from codequant.environment import describe
from codequant.limits import Limits

IMAGE_DIGEST_ENV = "CODEQUANT_IMAGE_DIGEST"


def execution_provenance(limits: Limits | None = None) -> dict[str, Any]:
    """The provenance of the shared pool's verdicts (its sandbox layers), with ``limits`` when given."""
    from codequant_executor.api import shared_pool

    out: dict[str, Any] = {**_static(), "sandbox_layers": list(shared_pool().sandbox.layers)}
    if limits is not None:
        out["limits"] = limits.as_key()
    return out


@functools.cache
def _static() -> dict[str, Any]:
    """What does not change while the process lives: versions of the executor and the toolchains, the image."""
    from codequant_executor.runner import runner_class, runner_languages

    try:
        executor = version("codequant-executor")
    except PackageNotFoundError:
        executor = "unknown"
    commands = tuple(c for language in runner_languages() for c in runner_class(language).commands)
    environment = describe(commands=commands)
    return {
        "executor_version": executor,
        # Python programs run under this very interpreter (``python_runner.interpreter``)
        "toolchains": {"python": environment["python"], **{c: environment.get(c, "unknown") for c in commands}},
        "image_digest": os.environ.get(IMAGE_DIGEST_ENV) or None,
    }
