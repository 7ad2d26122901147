"""Calibration sets: the reference study's random / mixed / code recipes over a document corpus.

Corpora: the RedPajama sample on the Hugging Face hub when online (source names in its `meta` field),
a local folder or JSONL file, or — offline, by default — the corpus shipped with codequant (Python
standard library and JDK sources as code, the Python reference and licence texts as prose; the same
bytes on every machine). Sequences are token windows of the model's own tokenizer, seeded, and cached
by content.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import random
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from codequant import settings
from codequant.errors import InputError, ServiceError
from codequant.jsonl import read_jsonl_numbered
from codequant.keys import stable_hash

log = logging.getLogger(__name__)
RECIPES = ("random", "mixed", "code")
REDPAJAMA = ("togethercomputer/RedPajama-Data-1T-Sample", "main")
CODE_SUFFIXES = {".py": "python", ".java": "java"}
QA_MIN_SCORE = 10


@dataclass(frozen=True)
class Document:
    """One calibration document and where it comes from."""

    text: str
    kind: str  # code | qa | text
    source: str  # e.g. github:python, stackexchange, text:licenses
    language: str | None = None  # python | java for code
    score: int | None = None  # Q&A post score

    def mentions_python_or_java(self) -> bool:
        lowered = self.text.lower()
        return "python" in lowered or "java" in lowered


# -- corpora -----------------------------------------------------------------------------------------------------
def local_corpus(path: Path) -> list[Document]:
    """Documents of a local corpus.

    A JSONL file: one object per line with ``text`` and ``kind`` (code | qa | text), optional ``language``
    (python | java), ``score`` (Q&A) and ``source``. A folder: ``code/**/*.py|*.java``, ``qa/*.jsonl``
    (objects with ``text`` and ``score``), ``text/**/*.txt|*.md`` (or ``text/*.jsonl`` with ``text``).
    """
    path = Path(path)
    if path.is_file():
        return [_from_record(record, f"{path}:{line}") for line, record in read_jsonl_numbered(path)]
    if not path.is_dir():
        raise InputError(f"calibration corpus {path} does not exist")
    documents: list[Document] = []
    for file in sorted((path / "code").rglob("*")):
        language = CODE_SUFFIXES.get(file.suffix)
        if language and file.is_file():
            documents.append(Document(_read(file), "code", f"github:{language}", language))
    for file in sorted((path / "qa").glob("*.jsonl")):
        documents += [_from_record({"kind": "qa", **r}, f"{file}:{line}") for line, r in read_jsonl_numbered(file)]
    for file in sorted((path / "text").rglob("*")):
        if file.suffix in (".txt", ".md") and file.is_file():
            documents.append(Document(_read(file), "text", f"text:{file.parent.name}"))
        elif file.suffix == ".jsonl":
            documents += [
                _from_record({"kind": "text", **r}, f"{file}:{line}") for line, r in read_jsonl_numbered(file)
            ]
    documents = [d for d in documents if d.text.strip()]
    if not documents:
        raise InputError(f"calibration corpus {path} holds no documents (see docs/quantizer.md for the layout)")
    return documents


def _from_record(record: dict[str, Any], where: str) -> Document:
    text, kind = record.get("text"), record.get("kind")
    if not isinstance(text, str):
        raise InputError(f"{where}: field 'text' must be a string")
    if kind not in ("code", "qa", "text"):
        raise InputError(f"{where}: field 'kind' must be code, qa or text, got {kind!r}")
    score = record.get("score")
    if score is not None and not isinstance(score, int):
        raise InputError(f"{where}: field 'score' must be an integer")
    language = record.get("language")
    source = record.get("source") or {"code": f"github:{language}", "qa": "stackexchange", "text": "text"}[kind]
    return Document(text, kind, source, language, score)


def _read(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace")


#: The offline corpus shipped with the quantizer (made by scripts/calibration_corpus.py) and its pinned SHA-256: the
#: same calibration windows on every machine.
SHIPPED_CORPUS = "calibration-corpus.jsonl.gz"
SHIPPED_CORPUS_SHA256 = "4e679d8b16a2029ff6ee18c93d89501f1763f9edcacbc0e5c895a80f161b1c91"


def shipped_corpus() -> tuple[list[Document], str]:
    """(documents, provenance) of the offline corpus shipped with codequant: 200 files of the Python standard
    library and 200 of the JDK's java.base as code, and 140 pieces of the Python reference's topics and of
    licence texts (~1 KB each, about a quarter of the documents) as prose. It has no Q&A posts: the mixed recipe
    needs a corpus that has them."""
    data = (resources.files("codequant_quantizer") / "data" / SHIPPED_CORPUS).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHIPPED_CORPUS_SHA256:
        raise ServiceError(f"the shipped calibration corpus is damaged (sha256 {digest[:16]}…): reinstall codequant")
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    documents = [_from_record(json.loads(line), f"{SHIPPED_CORPUS}:{number}") for number, line in enumerate(lines, 1)]
    return documents, f"codequant:{SHIPPED_CORPUS}@sha256:{digest[:16]}"


def hub_corpus(limit: int = 200_000) -> list[Document]:
    """Documents of the RedPajama sample (online only); the source comes from each record's meta field."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise InputError("the RedPajama calibration source needs the `datasets` package") from None
    repo, revision = REDPAJAMA
    stream = load_dataset(repo, split="train", revision=revision, streaming=True)
    documents = []
    for record in stream.take(limit):
        meta = record.get("meta") or {}
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except ValueError:
                meta = {}
        source = str(meta.get("source") or meta.get("redpajama_set_name") or "unknown").lower()
        text = record["text"]
        if source == "github":
            language = CODE_SUFFIXES.get(Path(str(meta.get("path", ""))).suffix)
            documents.append(Document(text, "code", f"github:{language or 'other'}", language))
        elif source == "stackexchange":
            score = meta.get("question_score")
            documents.append(Document(text, "qa", "stackexchange", None, int(score) if str(score).isdigit() else None))
        else:
            documents.append(Document(text, "text", source))
    return documents


def online() -> bool:
    """Whether the Hugging Face hub is reachable (and not disabled by HF_HUB_OFFLINE)."""
    if os.environ.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=3).close()
        return True
    except OSError:
        return False


def corpus_for(calibration_set: str, calibration_dir: Path | None) -> tuple[list[Document], str]:
    """(documents, provenance) for a calibration set: a path, the given folder, the hub, or the shipped corpus."""
    if calibration_set not in RECIPES:
        return local_corpus(Path(calibration_set)), f"local:{Path(calibration_set).resolve()}"
    if calibration_dir is not None:
        return local_corpus(calibration_dir), f"local:{Path(calibration_dir).resolve()}"
    if online():
        return hub_corpus(), f"hf:{REDPAJAMA[0]}@{REDPAJAMA[1]}"
    log.info("offline: calibrating on the corpus shipped with codequant")
    return shipped_corpus()


# -- sampling ----------------------------------------------------------------------------------------------------
def pools(recipe: str, documents: list[Document]) -> list[list[Document]]:
    """The document pools a recipe draws from in turn (mixed: code, then Q&A, alternately)."""
    code = [d for d in documents if d.kind == "code" and d.language in ("python", "java")]
    if recipe == "random":
        return [documents]
    if recipe == "code":
        if not code:
            raise InputError("the code calibration recipe needs Python or Java code files in the corpus")
        return [code]
    qa = [d for d in documents if d.kind == "qa" and (d.score or 0) > QA_MIN_SCORE and d.mentions_python_or_java()]
    if not code or not qa:
        raise InputError(
            "the mixed calibration recipe needs both Python/Java code files and Q&A posts with score > "
            f"{QA_MIN_SCORE} mentioning Python or Java (found {len(code)} and {len(qa)}); give a corpus with a qa/ "
            "folder (e.g. from a StackExchange dump) or use the hub"
        )
    return [code, qa]


def build_calibration(
    tokenizer: Any,
    calibration_set: str,
    *,
    nsamples: int,
    seqlen: int,
    seed: int,
    calibration_dir: Path | None = None,
    cache: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """(input_ids [nsamples, seqlen] int64 tensor, manifest) for a recipe or a local corpus path; cached."""
    import torch

    documents, provenance = corpus_for(calibration_set, calibration_dir)
    recipe = calibration_set if calibration_set in RECIPES else "random"
    fingerprint = stable_hash(
        {
            "recipe": recipe,
            "nsamples": nsamples,
            "seqlen": seqlen,
            "seed": seed,
            "corpus": stable_hash([(d.source, d.text) for d in documents]),
            "tokenizer": stable_hash([tokenizer.__class__.__name__, len(tokenizer), tokenizer.eos_token_id]),
        }
    )[:24]
    path = settings.cache_dir() / "calibration" / f"{fingerprint}.pt"
    if cache and path.exists():
        saved = torch.load(path, weights_only=False)
        return saved["input_ids"], saved["manifest"]
    rng = random.Random(seed)
    selected = pools(recipe, documents)
    tokenized: dict[int, list[int]] = {}
    rows, used = [], Counter()
    for index in range(nsamples):
        pool = selected[index % len(selected)]
        tokens: list[int] = []
        while len(tokens) < seqlen:
            pick = rng.randrange(len(pool))
            document = pool[pick]
            used[document.source] += 1
            key = id(document)
            if key not in tokenized:
                tokenized[key] = tokenizer(document.text, add_special_tokens=False)["input_ids"]
            ids = tokenized[key]
            if len(ids) > seqlen and not tokens:
                start = rng.randrange(len(ids) - seqlen + 1)
                tokens = ids[start : start + seqlen]
            else:
                tokens = tokens + ids + [tokenizer.eos_token_id]
        rows.append(tokens[:seqlen])
    input_ids = torch.tensor(rows, dtype=torch.long)
    manifest = {
        "recipe": recipe,
        "set": calibration_set,
        "nsamples": nsamples,
        "seqlen": seqlen,
        "seed": seed,
        "tokens": nsamples * seqlen,
        "corpus": provenance,
        "corpus_documents": dict(_counts(documents)),
        "documents_used_per_source": dict(sorted(used.items())),
        "fingerprint": fingerprint,
    }
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save({"input_ids": input_ids, "manifest": manifest}, tmp)
        tmp.replace(path)
    return input_ids, manifest


def _counts(documents: Iterable[Document]) -> Counter:
    return Counter(d.source for d in documents)
