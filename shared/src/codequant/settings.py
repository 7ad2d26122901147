"""Process-wide settings read from the environment (and nothing else)."""

from __future__ import annotations

import os
from pathlib import Path

#: Folder of benchmark JSONL files (see ../shared/datasets/README.md in a development checkout).
DATA_DIR_ENV = "CODEQUANT_DATA_DIR"
#: SQLAlchemy URL of the results store.
STORE_URL_ENV = "CODEQUANT_STORE_URL"
#: Celery broker URL (Redis) for the distributed mode.
BROKER_URL_ENV = "CODEQUANT_BROKER_URL"
#: Cache folder for built artifacts (tiny model, calibration sets).
CACHE_DIR_ENV = "CODEQUANT_CACHE_DIR"
#: Folder under which the HTTP API puts every study's output (and, by default, its SQLite store).
OUTPUT_ROOT_ENV = "CODEQUANT_OUTPUT_ROOT"
#: One API token in plain text (e.g. from compose's .env); it is hashed as soon as it is read.
API_TOKEN_ENV = "CODEQUANT_API_TOKEN"
#: A file of API token hashes, one ``NAME sha256:HEX`` per line (written by `codequant api-token`).
API_TOKENS_FILE_ENV = "CODEQUANT_API_TOKENS_FILE"

_REPO_ROOT = Path(__file__).resolve().parents[3]


def data_dir() -> Path | None:
    """The local benchmark folder: $CODEQUANT_DATA_DIR, else ../shared/datasets beside a checkout."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    sibling = _REPO_ROOT.parent / "shared" / "datasets"
    return sibling if sibling.is_dir() else None


def cache_dir() -> Path:
    """Where built artifacts are cached: $CODEQUANT_CACHE_DIR, else ~/.cache/codequant."""
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "codequant"


def broker_url() -> str:
    """The Celery broker URL: $CODEQUANT_BROKER_URL, else the local Redis."""
    return os.environ.get(BROKER_URL_ENV, "redis://127.0.0.1:6379/0")


def store_url(default: str | None = None) -> str | None:
    """The results store URL from $CODEQUANT_STORE_URL, else ``default``."""
    return os.environ.get(STORE_URL_ENV, default)


def output_root() -> Path:
    """Where the HTTP API writes studies: $CODEQUANT_OUTPUT_ROOT, else ``runs`` in the working folder (absolute)."""
    return Path(os.environ.get(OUTPUT_ROOT_ENV) or "runs").resolve()


def api_store_url(root: Path | None = None) -> str:
    """The HTTP API's results store: $CODEQUANT_STORE_URL, else SQLite ``api-store.db`` in the output root
    (``root``, else ``output_root()``).

    `codequant status` resolves it the same way, so it reads the store that the API ran a study in."""
    return os.environ.get(STORE_URL_ENV) or f"sqlite:///{(root or output_root()).resolve() / 'api-store.db'}"
