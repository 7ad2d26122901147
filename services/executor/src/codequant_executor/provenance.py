"""Where a verdict came from: the executor's version, the sandbox layers in effect, the toolchains' versions, the
limits and, in a container, the image digest (``$CODEQUANT_IMAGE_DIGEST``, set by whoever starts the container)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from codequant.environment import describe
from codequant.limits import Limits

IMAGE_DIGEST_ENV = "CODEQUANT_IMAGE_DIGEST"


def execution_provenance(layers: Sequence[str], limits: Limits | None = None) -> dict[str, Any]:
    """The provenance of verdicts given under the sandbox ``layers`` (``Sandbox.layers``), with ``limits``."""
    out: dict[str, Any] = {**_static(), "sandbox_layers": list(layers)}
    if limits is not None:
        out["limits"] = limits.as_key()
    return out


def flat_provenance(layers: Sequence[str], limits: Limits) -> dict[str, str]:
    """``execution_provenance`` as the text fields of a job's recorded environment (``ExecuteResult.environment``)."""
    found = execution_provenance(layers, limits)
    return {
        "executor_version": found["executor_version"],
        "sandbox_layers": ", ".join(found["sandbox_layers"]),
        "image_digest": found["image_digest"] or "none",
        "limits": json.dumps(found["limits"], sort_keys=True),
    }


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
