"""Resolve a model source (as recorded in a study's variant keys) to something transformers can load.

Used by the quantizer's stage function in both run modes, so a worker resolves the same model the planner keyed.
Builtin models are built by whichever installed distribution provides their kind in the
``codequant.builtin_models`` entry-point group (``tiny-code``: codequant-tiny-model).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from codequant import settings
from codequant.errors import InputError, ServiceError


def resolve_model(source: dict[str, Any], *, progress: bool | Callable[[int, int], None] = True) -> str:
    """A local folder for ``{"path": ...}``, ``{"hub_id", "revision"}`` or ``{"builtin": {kind, seed, profile}}``.

    ``progress``: a progress bar (True), none (False), or a callback given (done, total) while a model is built.

    A builtin model is built on first use and cached in $CODEQUANT_CACHE_DIR; hub models are downloaded at
    their pinned revision into the Hugging Face cache.
    """
    if "builtin" in source:
        builtin = source["builtin"]
        build = builtin_builder(builtin["kind"])
        folder = builtin_cache_folder(builtin["kind"], builtin["profile"], builtin["seed"])
        return str(build(folder, seed=builtin["seed"], profile=builtin["profile"], progress=progress))
    if "path" in source:
        path = Path(source["path"])
        if not path.is_dir():
            raise InputError(f"model folder {path} does not exist")
        return str(path)
    if "hub_id" in source:
        try:
            from huggingface_hub import snapshot_download

            return snapshot_download(source["hub_id"], revision=source.get("revision", "main"))
        except ImportError:
            raise ServiceError("downloading hub models needs huggingface_hub installed") from None
        except Exception as exc:  # network, auth, missing repo: one line for the user
            raise ServiceError(f"cannot fetch model {source['hub_id']} from the Hugging Face hub: {exc}") from None
    raise InputError(f"model source must name a path, hub_id or builtin model, got {sorted(source)}")


def builtin_cache_folder(kind: str, profile: str, seed: int) -> Path:
    """Where a builtin model is built and cached (studies and `codequant tiny-model` share it)."""
    return settings.cache_dir() / "models" / f"{kind}-{profile}-seed{seed}"


def builtin_builder(kind: str) -> Callable[..., Path]:
    """The function that builds builtin models of ``kind``: ``build(folder, *, seed, profile, progress) -> folder``."""
    found = [ep for ep in entry_points(group="codequant.builtin_models") if ep.name == kind]
    if not found:
        raise ServiceError(
            f"no installed distribution builds the builtin model {kind!r} (for tiny-code: codequant-tiny-model)"
        )
    return found[0].load()


def hub_model_problem(hub_id: str, revision: str = "main", *, timeout_s: float = 10.0) -> str | None:
    """Why ``hub_id`` at ``revision`` cannot be had here, or None when it can: it is in the local Hugging Face
    cache, or the hub knows it. None too when huggingface_hub is not installed (whoever downloads it will say).

    Checked before a study is accepted, so that an unknown model is refused at once rather than hours later."""
    try:
        from huggingface_hub import HfApi, snapshot_download
        from huggingface_hub.utils import (
            GatedRepoError,
            HFValidationError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        return None
    try:
        snapshot_download(hub_id, revision=revision, local_files_only=True)
        return None
    except HFValidationError as exc:
        return f"{hub_id!r} is not a Hugging Face hub id: {str(exc).splitlines()[0]}"
    except LocalEntryNotFoundError:
        pass  # not cached: ask the hub
    try:
        HfApi().model_info(hub_id, revision=revision, timeout=timeout_s)
    except GatedRepoError:  # before RepositoryNotFoundError: it is one
        return f"model {hub_id} is gated: accept its terms on the hub and give the workers an HF_TOKEN"
    except RepositoryNotFoundError:
        return f"no model {hub_id} on the Hugging Face hub (or it is private: set HF_TOKEN)"
    except RevisionNotFoundError:
        return f"model {hub_id} has no revision {revision!r}"
    except Exception as exc:  # offline mode, DNS, connection, HTTP errors: one line for the user
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return f"model {hub_id} is not in the local model cache and the Hugging Face hub cannot be reached ({first})"
    return None
