"""How the offline calibration corpus shipped with the quantizer was made (codequant_quantizer/data/).

    python3 scripts/calibration_corpus.py --jdk-src /usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip --out FILE

Code: files of the Python standard library of the running interpreter (PSF License) and of the JDK's java.base
sources (GPL-2.0 with the Classpath Exception, each file keeping its own header); prose: the Python reference's
topics (``pydoc_data``, PSF License) and the licence texts in /usr/share/common-licenses, cut at paragraphs into
~1 KB documents. A fixed-seed sample of each, written as gzipped JSONL with a zero timestamp, so the same inputs
give the same bytes. The shipped file was made once (Python 3.11.7, Temurin 25 sources, Debian 12's licences) and
is pinned by its SHA-256 in codequant_quantizer.calibration: another machine's releases give another file, which
is why the corpus is shipped rather than assembled where it is used.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import sys
import zipfile
from pathlib import Path

PYTHON_FILES = 200
JAVA_FILES = 200
PROSE_DOCUMENTS = 140
SIZES = (1_000, 30_000)  # characters: drop stubs and the largest modules
LICENCES = ("Apache-2.0", "BSD", "GPL-2", "GPL-3", "LGPL-2.1", "MPL-2.0", "Artistic", "CC0-1.0")
PROSE_CHUNK = 1024


def _sized(texts: dict[str, str]) -> list[str]:
    return sorted(name for name, text in texts.items() if SIZES[0] <= len(text) <= SIZES[1])


def python_files() -> dict[str, str]:
    stdlib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    texts = {}
    for file in sorted(stdlib.glob("**/*.py")):
        if {"site-packages", "test", "tests", "idlelib"} & set(file.parts):
            continue
        texts["/".join(file.relative_to(stdlib).parts)] = file.read_text(encoding="utf-8", errors="replace")
    return texts


def java_files(archive: Path) -> dict[str, str]:
    with zipfile.ZipFile(archive) as zf:
        names = [n for n in zf.namelist() if n.startswith("java.base/") and n.endswith(".java")]
        return {name: zf.read(name).decode("utf-8", "replace") for name in sorted(names)}


def prose_chunks(text: str) -> list[str]:
    """``text`` cut at paragraph ends into pieces of at least PROSE_CHUNK characters (a last piece under 200
    characters is dropped)."""
    chunks, current = [], ""
    for paragraph in text.split("\n\n"):
        current = f"{current}\n\n{paragraph}" if current else paragraph
        if len(current) >= PROSE_CHUNK:
            chunks.append(current)
            current = ""
    if len(current.strip()) >= 200:
        chunks.append(current)
    return chunks


def prose() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    pieces = [("text:pydoc", chunk) for _, text in sorted(topics.items()) for chunk in prose_chunks(text)]
    for name in LICENCES:
        text = (Path("/usr/share/common-licenses") / name).read_text(encoding="utf-8", errors="replace")
        pieces += [("text:licences", chunk) for chunk in prose_chunks(text)]
    return pieces


def records(jdk_src: Path) -> list[dict[str, str]]:
    rng = random.Random(0)
    python, java = python_files(), java_files(jdk_src)
    out = [
        {"kind": "code", "language": "python", "source": "stdlib:python", "text": python[name]}
        for name in sorted(rng.sample(_sized(python), PYTHON_FILES))
    ]
    out += [
        {"kind": "code", "language": "java", "source": "jdk:java", "text": java[name]}
        for name in sorted(rng.sample(_sized(java), JAVA_FILES))
    ]
    pieces = prose()
    out += [{"kind": "text", "source": source, "text": text} for source, text in rng.sample(pieces, PROSE_DOCUMENTS)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jdk-src", type=Path, required=True, help="a JDK's lib/src.zip")
    parser.add_argument("--out", type=Path, required=True, help="the .jsonl.gz file to write")
    args = parser.parse_args()
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records(args.jdk_src))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as handle:
        handle.write(lines.encode("utf-8"))
    args.out.write_bytes(buffer.getvalue())
    print(f"{args.out}: {lines.count(chr(10))} documents, sha256 {hashlib.sha256(buffer.getvalue()).hexdigest()}")


if __name__ == "__main__":
    main()
