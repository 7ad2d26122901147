"""The offline calibration corpus a machine assembles for itself, and the recipes' pools over it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from codequant_quantizer.calibration import local_corpus, machine_corpus, pools


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def test_the_machine_corpus_depends_on_releases_not_on_installed_packages(tmp_path: Path) -> None:
    first = machine_corpus(tmp_path / "a")
    texts = sorted(p.name for p in (first / "text").iterdir())
    # Prose is the system's licences and the Python reference's topics: no package's README or NEWS, whose
    # set changes whenever a package is installed (and with it the random recipe's calibration windows).
    assert texts and all(name.startswith(("licence_", "pydoc_")) for name in texts)
    assert any(name.startswith("pydoc_") for name in texts) and any(name.startswith("licence_") for name in texts)
    assert len(list((first / "code" / "java").iterdir())) == 800
    assert _digest(machine_corpus(tmp_path / "b")) == _digest(first)  # assembled again: the same bytes

    documents = local_corpus(first)
    code, everything = pools("code", documents)[0], pools("random", documents)[0]
    assert {d.language for d in code} == {"python", "java"} and all(d.kind == "code" for d in code)
    assert len(everything) == len(documents) > len(code)
    # Prose is cut into pieces so that the random recipe, drawing documents uniformly, is not almost all code.
    assert 0.2 < sum(d.kind == "text" for d in documents) / len(documents) < 0.4
