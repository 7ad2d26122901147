"""The held-out perplexity set is package data read by a small loader: its texts and their order are pinned."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from codequant.heldout import HELD_OUT_CODE, NAME, held_out_texts

REPO = Path(__file__).resolve().parents[2]

#: SHA-256 of the set's texts in order (JSON list). Every stored perplexity was measured on exactly these texts:
#: a change must be deliberate, come with a new ``NAME`` and a migration note (docs/architecture.md, "Keys").
PINNED = "27688732333c6271bcc5819ca3ad612c8d3c4354bef39e638dbde1f00b4f6b5f"


def test_the_texts_and_their_order_are_pinned() -> None:
    texts = held_out_texts()
    assert NAME == "codequant-heldout-v1"
    assert hashlib.sha256(json.dumps(texts, ensure_ascii=False).encode("utf-8")).hexdigest() == PINNED
    assert {language: len(snippets) for language, snippets in HELD_OUT_CODE.items()} == {"python": 16, "java": 14}
    assert texts[:16] == HELD_OUT_CODE["python"] and held_out_texts(("java",)) == HELD_OUT_CODE["java"]


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="no held-out code in cobol"):
        held_out_texts(("python", "cobol"))


def test_the_data_file_ships_in_the_wheel(tmp_path: Path) -> None:
    """A non-editable install (the images') has the data file beside the loader (built from a copy: setuptools
    builds in the source folder)."""
    source = tmp_path / "shared"
    shutil.copytree(REPO / "shared", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("codequant_shared-*.whl")
    assert "codequant/data/heldout.jsonl" in zipfile.ZipFile(wheel).namelist()
