"""FastAPI app: submit studies (YAML), list them, follow their progress, fetch their reports; a dashboard."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from sqlalchemy import select

from codequant import settings
from codequant.keys import stable_hash
from codequant.store import Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant.study import StudyError, parse_study
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.api.runner import StudyQueue
from codequant_orchestrator.plan import Plan, plan_study

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


def _problems(error: StudyError) -> list[dict[str, Any]]:
    return [{"field": p.field, "line": p.line, "message": p.message} for p in error.details]


def create_app(
    *,
    store_url: str | None = None,
    distributed: bool = False,
    broker_url: str | None = None,
    data_dir: Path | None = None,
    device: str = "cpu",
) -> FastAPI:
    """The API over one results store; submitted studies run one at a time in a background thread."""
    url = store_url or settings.store_url(f"sqlite:///{Path('runs/api-store.db').resolve()}")
    store = Store(url)
    runner = StudyQueue(store, distributed=distributed, broker_url=broker_url, data_dir=data_dir, device=device)
    plans: dict[str, tuple[str, Plan]] = {}
    app = FastAPI(title="codequant", version="0.1.0")
    app.state.store, app.state.runner = store, runner
    with store.session() as session:  # studies an earlier API process left running resume now
        for row in session.scalars(select(StudyRow).where(StudyRow.status.in_(("pending", "running")))):
            runner.submit(row.id)

    def plan_of(row: StudyRow) -> Plan:
        cached = plans.get(row.id)
        if cached is None or cached[0] != row.spec_hash:
            plans[row.id] = (row.spec_hash, plan_study(parse_study(row.spec_yaml), data_dir=data_dir))
        return plans[row.id][1]

    def study_row(study_id: str) -> StudyRow:
        with store.session() as session:
            row = session.get(StudyRow, study_id)
            if row is None:
                raise HTTPException(404, detail=f"no study {study_id!r}")
            session.expunge(row)
            return row

    def summary(row: StudyRow) -> dict[str, Any]:
        return {
            "id": row.id,
            "status": row.status,
            "error": row.error,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "links": {
                "self": f"/studies/{row.id}",
                "progress": f"/studies/{row.id}/progress",
                "report": f"/studies/{row.id}/report",
            },
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "running": runner.current or ""}

    @app.post("/studies", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type and content_type not in YAML_TYPES:
            raise HTTPException(415, detail=f"send the study as YAML ({', '.join(YAML_TYPES)}), not {content_type}")
        text = (await request.body()).decode("utf-8", "replace")
        try:
            study = parse_study(text, source="study")
        except StudyError as exc:
            return JSONResponse({"detail": _problems(exc)}, status_code=422)
        with store.session() as session:
            row = session.get(StudyRow, study.name)
            if row is not None and row.status in ("pending", "running"):
                raise HTTPException(409, detail=f"study {study.name!r} is {row.status}")
            if row is None:
                row = StudyRow(id=study.name, spec_yaml=text, spec_hash=stable_hash(text), status="pending")
                session.add(row)
            else:
                row.spec_yaml, row.spec_hash, row.status, row.error = text, stable_hash(text), "pending", None
        runner.submit(study.name)
        return JSONResponse(jsonable_encoder(summary(study_row(study.name))), status_code=202)

    @app.get("/studies")
    def list_studies() -> list[dict[str, Any]]:
        with store.session() as session:
            rows = list(session.scalars(select(StudyRow).order_by(StudyRow.created_at.desc())))
        return [summary(row) for row in rows]

    @app.get("/studies/{study_id}")
    def get_study(study_id: str) -> dict[str, Any]:
        row = study_row(study_id)
        with store.session() as session:
            keys = select(StudyVariant.variant_key).where(StudyVariant.study_id == study_id)
            variants = [
                {
                    "model": v.model_name,
                    "variant": v.variant_name,
                    "method": v.method,
                    "status": v.status,
                    "error": v.error,
                    "footprint": v.footprint,
                }
                for v in session.scalars(select(Variant).where(Variant.key.in_(keys)))
            ]
        return {**summary(row), "spec": row.spec_yaml, "variants": variants, "stages": stages(row)}

    def stages(row: StudyRow) -> dict[str, Any]:
        try:
            return bookkeeping.stage_progress(store, plan_of(row))
        except Exception as exc:  # an unreadable benchmark must not break listing
            return {"error": str(exc)}

    @app.get("/studies/{study_id}/progress")
    def progress(study_id: str) -> dict[str, Any]:
        row = study_row(study_id)
        return {"id": row.id, "status": row.status, "error": row.error, "stages": stages(row)}

    def report_dir(study_id: str) -> Path:
        row = study_row(study_id)
        return parse_study(row.spec_yaml).out_dir / "report"

    @app.get("/studies/{study_id}/report")
    def report(study_id: str) -> FileResponse:
        path = report_dir(study_id) / "report.html"
        if not path.is_file():
            raise HTTPException(404, detail=f"the report of {study_id!r} is not built yet")
        return FileResponse(path, media_type="text/html")

    @app.get("/studies/{study_id}/report/{filename}")
    def report_file(study_id: str, filename: str) -> FileResponse:
        folder = report_dir(study_id)
        path = (folder / filename).resolve()
        if path.parent != folder.resolve() or not path.is_file():
            raise HTTPException(404, detail=f"no report file {filename!r} for {study_id!r}")
        return FileResponse(path)

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return (resources.files("codequant_orchestrator.api") / "dashboard.html").read_text(encoding="utf-8")

    return app
