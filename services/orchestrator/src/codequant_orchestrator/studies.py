"""Open a study for running or inspecting: spec, plan, store and bookkeeping rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from codequant import settings
from codequant.errors import InputError
from codequant.jsonl import atomic_writer
from codequant.store import Store
from codequant.store import Study as StudyRow
from codequant.study import Study, load_study, parse_study
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.plan import Plan, plan_study


@dataclass
class PlannedStudy:
    """A study with its plan and its store, where it is registered (ready to run or to inspect)."""

    plan: Plan
    store: Store
    spec_yaml: str

    @property
    def study(self) -> Study:
        return self.plan.study


def open_study(path: Path, *, store_url: str | None = None, data_dir: Path | None = None) -> PlannedStudy:
    """Validate the study file, load its benchmarks, copy the spec into its output folder and register it."""
    study = load_study(path)
    return open_parsed(study, path.read_text(encoding="utf-8"), store_url=store_url, data_dir=data_dir)


def open_parsed(
    study: Study, spec_yaml: str, *, store_url: str | None = None, data_dir: Path | None = None
) -> PlannedStudy:
    """Like open_study, for a spec already parsed (the HTTP API)."""
    plan = plan_study(study, data_dir=data_dir)
    study.out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_writer(study.out_dir / "study.yaml") as handle:
        handle.write(spec_yaml)
    store = Store(store_url or settings.store_url(study.resolved_store_url))
    bookkeeping.register_study(store, plan, spec_yaml)
    return PlannedStudy(plan=plan, store=store, spec_yaml=spec_yaml)


def find_study(target: str, *, store_url: str | None = None) -> PlannedStudy:
    """A study named by its YAML file, its output folder (holding study.yaml) or its id, in the store that ran it.

    With ``store_url`` (else $CODEQUANT_STORE_URL) only that store is read. Otherwise the study's own store (its
    ``store_url``, or SQLite in its output folder) and then the HTTP API's (``settings.api_store_url``, resolved as
    `codequant api` resolves it) are tried, the first that holds the study wins. Nothing is written."""
    path = Path(target)
    spec_file = path if path.is_file() else path / "study.yaml" if path.is_dir() else None
    study: Study | None = None
    own: list[str] = []
    if spec_file is not None and spec_file.is_file():
        study = load_study(spec_file)
        folder = study.out_dir if spec_file == path else path  # an output folder holds study.yaml and store.db
        own = [study.store_url or f"sqlite:///{(folder / 'store.db').resolve()}"]
    name = study.name if study is not None else target
    explicit = store_url or settings.store_url()
    candidates = [explicit] if explicit else list(dict.fromkeys([*own, settings.api_store_url()]))
    for url in candidates:
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
            continue  # opening it would create it
        store = Store(url)
        with store.session() as session:
            row = session.get(StudyRow, name)
            spec_yaml = row.spec_yaml if row is not None else None
        if spec_yaml is not None:
            if study is None:
                study = parse_study(spec_yaml, source=f"{target} (stored spec)")
            return PlannedStudy(plan=plan_study(study), store=store, spec_yaml=spec_yaml)
        store.dispose()
    looked = ", ".join(make_url(url).render_as_string(hide_password=True) for url in candidates)
    raise InputError(f"{target}: no results store holds study {name!r} (looked in {looked}); run it, or give --store")
