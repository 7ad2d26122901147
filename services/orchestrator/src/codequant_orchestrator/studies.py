"""Open a study for running or inspecting: spec, plan, store and bookkeeping rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from codequant import settings
from codequant.errors import InputError
from codequant.jsonl import atomic_writer
from codequant.store import Store
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
    """A study named by its YAML file, its output folder (holding study.yaml) or its id in a store."""
    path = Path(target)
    if path.is_file():
        return open_study(path, store_url=store_url)
    if path.is_dir() and (path / "study.yaml").is_file():
        spec_yaml = (path / "study.yaml").read_text(encoding="utf-8")
        study = parse_study(spec_yaml, source=str(path / "study.yaml"))
        url = store_url or settings.store_url(f"sqlite:///{(path / 'store.db').resolve()}")
        return PlannedStudy(plan=plan_study(study), store=Store(url), spec_yaml=spec_yaml)
    url = store_url or settings.store_url()
    if url is None:
        raise InputError(
            f"{target}: not a study file or folder; to look a study id up, give --store or ${settings.STORE_URL_ENV}"
        )
    store = Store(url)
    from codequant.store import Study as StudyRow

    with store.session() as session:
        row = session.get(StudyRow, target)
        if row is None:
            raise InputError(f"{target}: no such study in {store.safe_url}")
        spec_yaml = row.spec_yaml
    study = parse_study(spec_yaml, source=f"{target} (stored spec)")
    return PlannedStudy(plan=plan_study(study), store=store, spec_yaml=spec_yaml)
