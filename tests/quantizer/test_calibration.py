"""The offline calibration corpus shipped with codequant, and the recipes' pools over it."""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from codequant.errors import ServiceError
from codequant_quantizer import calibration
from codequant_quantizer.calibration import SHIPPED_CORPUS, corpus_for, pools, shipped_corpus

REPO = Path(__file__).resolve().parents[2]


def test_offline_calibration_uses_the_shipped_corpus_whose_bytes_are_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    documents, provenance = corpus_for("code", None)
    data = (resources.files("codequant_quantizer") / "data" / SHIPPED_CORPUS).read_bytes()
    # The corpus is a fixed file, not assembled from this machine's Python, JDK and OS: the same windows everywhere.
    assert hashlib.sha256(data).hexdigest() == "4e679d8b16a2029ff6ee18c93d89501f1763f9edcacbc0e5c895a80f161b1c91"
    assert provenance == f"codequant:{SHIPPED_CORPUS}@sha256:4e679d8b16a2029f"
    assert len(documents) == len(gzip.decompress(data).splitlines()) == 540

    code, everything = pools("code", documents)[0], pools("random", documents)[0]
    assert {d.language for d in code} == {"python", "java"} and all(d.kind == "code" for d in code)
    assert len(code) == 400 and len(everything) == len(documents)
    # Prose is cut into pieces so that the random recipe, drawing documents uniformly, is not almost all code.
    assert 0.2 < sum(d.kind == "text" for d in documents) / len(documents) < 0.4
    with pytest.raises(Exception, match="mixed calibration recipe needs both"):
        pools("mixed", documents)


def test_a_damaged_corpus_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(calibration, "SHIPPED_CORPUS_SHA256", "0" * 64)
    with pytest.raises(ServiceError, match="calibration corpus is damaged"):
        shipped_corpus()


@pytest.mark.slow
def test_the_corpus_ships_in_the_wheel(tmp_path: Path) -> None:
    """A non-editable install (the images') has the corpus beside the loader (built from a copy: setuptools builds
    in the source folder)."""
    source = tmp_path / "quantizer"
    shutil.copytree(
        REPO / "services" / "quantizer", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(source)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("codequant_quantizer-*.whl")
    assert f"codequant_quantizer/data/{SHIPPED_CORPUS}" in zipfile.ZipFile(wheel).namelist()
