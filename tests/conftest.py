"""Fixtures shared by every test: the benchmark data folder and real SQLite/PostgreSQL stores."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codequant import numerics

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "datasets"
PG_BASE_URL = os.environ.get("CODEQUANT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.fail(f"benchmark data not found at {DATA_DIR} (../shared/datasets beside the checkout)")
    return DATA_DIR


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    schema = f"cq_test_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(PG_BASE_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both store back-ends: a SQLite file and a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--forbid-torch",
        action="store_true",
        help="fail the test after which torch is imported in the test process (the fast tier: make test-fast)",
    )


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.config.getoption("--forbid-torch") and "torch" in sys.modules:
        pytest.fail(f"torch was imported in the test process by the time {item.nodeid} finished", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    """One cache for the whole session (tiny model, compiled Java helpers, calibration windows), shared with
    the subprocesses tests start; entries are keyed by content, so a cache left by an earlier run is safe."""
    os.environ.setdefault("CODEQUANT_CACHE_DIR", str(Path(tempfile.gettempdir()) / "codequant-test-cache"))
    numerics.pin()  # before any test imports torch: the numbers the CLI computes, also in this process
    _seed_model_cache(Path(os.environ["CODEQUANT_CACHE_DIR"]) / "models")


#: Trained test models kept with the tests: the tiny model's "test" profile (seed 0, as `builtin: tiny-code` trains
#: it) and the quantizer tests' small Llama. Training them is 4-10 minutes of a run on a fresh machine.
FIXTURE_MODELS = Path(__file__).parent / "data" / "models"


def _seed_model_cache(models: Path) -> None:
    """Copy each fixture model into a cache that lacks it. Their builders still decide: a copy whose marker no
    longer matches the recipe (tiny model: its fingerprint; small model: its version) is trained again."""
    for source in sorted(FIXTURE_MODELS.iterdir()):
        target = models / source.name
        if target.exists():
            continue
        staging = models / f".{source.name}.{os.getpid()}.seeding"
        shutil.copytree(source, staging)
        try:
            staging.rename(target)
        except OSError:  # another test process seeded it first
            shutil.rmtree(staging, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny offline code model ("test" profile), where the orchestrator looks for `builtin: tiny-code`."""
    from codequant.model_source import resolve_model

    return Path(resolve_model({"builtin": {"kind": "tiny-code", "profile": "test", "seed": 0}}, progress=False))
