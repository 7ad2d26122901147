"""Quantizer fixtures: a small model trained on code, and a local calibration corpus."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from codequant import settings
from tests.quantizer.small_model import TRAIN_MODULES, build_small_model


@pytest.fixture(scope="session")
def small_code_model() -> Path:
    return build_small_model(settings.cache_dir() / "models" / "small-code-test")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local corpus in the documented layout: code (stdlib modules a-l), prose, a few Q&A posts."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "code").mkdir()
    (root / "text").mkdir()
    (root / "qa").mkdir()
    for path in TRAIN_MODULES:
        (root / "code" / path.name).write_text(path.read_text(encoding="utf-8", errors="replace"))
    # Mostly prose, like a web-scale random sample (RedPajama is ~5 % GitHub code).
    texts = [
        *Path("/usr/share/common-licenses").glob("*"),
        *Path("/usr/share/doc").glob("*/README*"),
        *Path("/usr/share/doc").glob("*/NEWS*"),
    ]
    for index, path in enumerate(sorted(texts)):
        if path.is_file() and path.stat().st_size > 200:
            text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            (root / "text" / f"{index}.txt").write_bytes(text)
    posts = [
        {"text": "How do I reverse a list in Python? Use reversed() or slicing [::-1].", "score": 42},
        {"text": "In Java, how can I join strings? Use String.join or a StringBuilder.", "score": 17},
        {"text": "Why is my Python loop slow? Avoid repeated attribute lookups.", "score": 3},
        {"text": "How to sort a HashMap by value in Java? Stream the entries and sort.", "score": 25},
    ]
    (root / "qa" / "posts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in posts))
    return root
