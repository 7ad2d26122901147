"""FastAPI app: submit studies (YAML), list them, follow their progress, cancel them, fetch their reports; a
dashboard. Every route but ``GET /health`` and the dashboard page needs an API token when tokens are given."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from codequant import settings
from codequant.keys import stable_hash
from codequant.store import Store, StudyVariant, Variant
from codequant.store import Study as StudyRow
from codequant.study import StudyError, parse_study
from codequant_orchestrator import bookkeeping
from codequant_orchestrator.api.admission import admit, output_folder
from codequant_orchestrator.api.auth import Tokens, guard
from codequant_orchestrator.api.runner import StudyQueue
from codequant_orchestrator.cancellation import CANCELLED, CANCELLING
from codequant_orchestrator.plan import Plan, plan_study

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
#: The largest study accepted (a study is a page of YAML; this leaves room for long problem lists).
MAX_STUDY_BYTES = 1 << 20
#: Statuses in which a study is queued or running: it cannot be submitted again, it can be cancelled.
ACTIVE = ("pending", "running", CANCELLING)


def _problems(error: StudyError) -> list[dict[str, Any]]:
    return [{"field": p.field, "line": p.line, "message": p.message} for p in error.details]


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes (before reading it
    when Content-Length says so)."""
    too_large = HTTPException(413, detail=f"a study may be at most {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    store_url: str | None = None,
    distributed: bool = False,
    broker_url: str | None = None,
    data_dir: Path | None = None,
    device: str = "cpu",
    output_root: Path | None = None,
    tokens: Tokens | None = None,
) -> FastAPI:
    """The API over one results store; submitted studies run one at a time in a background thread.

    ``output_root`` (default $CODEQUANT_OUTPUT_ROOT or ./runs): every study's output goes under it.
    ``store_url`` (default $CODEQUANT_STORE_URL or SQLite ``api-store.db`` in the output root): the results store.
    ``tokens``: the API tokens every route but /health and the dashboard requires (None: no authentication).
    """
    root = (output_root or settings.output_root()).resolve()
    store = Store(store_url or settings.api_store_url(root))
    runner = StudyQueue(
        store, distributed=distributed, broker_url=broker_url, data_dir=data_dir, device=device, output_root=root
    )
    plans: dict[str, tuple[str, Plan]] = {}
    app = FastAPI(title="codequant", version="0.1.0", openapi_url=None, docs_url=None, redoc_url=None)
    app.state.store, app.state.runner, app.state.output_root = store, runner, root
    api = APIRouter(dependencies=[Depends(guard(tokens))])
    _resume(store, runner, distributed=distributed, broker_url=broker_url)

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

    def stages(row: StudyRow) -> dict[str, Any]:
        try:
            return bookkeeping.stage_progress(store, plan_of(row))
        except Exception as exc:  # an unreadable benchmark must not break listing
            return {"error": str(exc)}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "running": runner.current or ""}

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return (resources.files("codequant_orchestrator.api") / "dashboard.html").read_text(encoding="utf-8")

    @api.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @api.post("/studies", status_code=202)
    async def submit(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in YAML_TYPES:
            raise HTTPException(415, detail=f"send the study as YAML ({', '.join(YAML_TYPES)}), not {content_type}")
        body = await _read_body(request, MAX_STUDY_BYTES)
        try:
            admitted = await run_in_threadpool(admit, body, output_root=root, data_dir=data_dir)
        except StudyError as exc:
            return JSONResponse({"detail": _problems(exc)}, status_code=422)
        name, text = admitted.study.name, admitted.text
        try:
            with store.session() as session:
                row = session.get(StudyRow, name)
                if row is not None and row.status in ACTIVE:
                    raise HTTPException(409, detail=f"study {name!r} is {row.status}")
                if row is None:
                    session.add(StudyRow(id=name, spec_yaml=text, spec_hash=stable_hash(text), status="pending"))
                else:  # submitted again: it resumes from the work stored
                    row.spec_yaml, row.spec_hash, row.status, row.error = text, stable_hash(text), "pending", None
        except IntegrityError:  # the same study submitted twice at once
            raise HTTPException(409, detail=f"study {name!r} is pending") from None
        plans[name] = (stable_hash(text), admitted.plan)
        runner.submit(name)
        return JSONResponse(jsonable_encoder(summary(study_row(name))), status_code=202)

    @api.get("/studies")
    def list_studies() -> list[dict[str, Any]]:
        with store.session() as session:
            rows = list(session.scalars(select(StudyRow).order_by(StudyRow.created_at.desc())))
        return [summary(row) for row in rows]

    @api.get("/studies/{study_id}")
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

    @api.delete("/studies/{study_id}")
    def cancel(study_id: str) -> JSONResponse:
        """Cancel a study: a pending one at once (200), a running one at its runner's next unit of work (202,
        ``cancelling`` until it has stopped). Work already finished stays stored; submitting again resumes."""
        row = study_row(study_id)
        if row.status in ("done", "failed"):
            raise HTTPException(409, detail=f"study {study_id!r} is {row.status}: there is nothing to cancel")
        if bookkeeping.move_study(store, study_id, ("pending",), CANCELLED):
            code = 200
        elif bookkeeping.move_study(store, study_id, ("running",), CANCELLING):
            code = 202
        else:  # cancelled or cancelling already
            code = 200 if study_row(study_id).status == CANCELLED else 202
        return JSONResponse(jsonable_encoder(summary(study_row(study_id))), status_code=code)

    @api.get("/studies/{study_id}/progress")
    def progress(study_id: str) -> dict[str, Any]:
        row = study_row(study_id)
        return {"id": row.id, "status": row.status, "error": row.error, "stages": stages(row)}

    def report_dir(study_id: str) -> Path:
        row = study_row(study_id)
        try:
            return output_folder(parse_study(row.spec_yaml), root) / "report"
        except StudyError:  # stored by an older version, outside the output root: not served
            raise HTTPException(404, detail=f"the report of {study_id!r} is outside the output root") from None

    @api.get("/studies/{study_id}/report")
    def report(study_id: str) -> FileResponse:
        path = report_dir(study_id) / "report.html"
        if not path.is_file():
            raise HTTPException(404, detail=f"the report of {study_id!r} is not built yet")
        return FileResponse(path, media_type="text/html")

    @api.get("/studies/{study_id}/report/{filename}")
    def report_file(study_id: str, filename: str) -> FileResponse:
        folder = report_dir(study_id)
        path = (folder / filename).resolve()
        if path.parent != folder.resolve() or not path.is_file():
            raise HTTPException(404, detail=f"no report file {filename!r} for {study_id!r}")
        return FileResponse(path)

    app.include_router(api)
    return app


def _resume(store: Store, runner: StudyQueue, *, distributed: bool, broker_url: str | None) -> None:
    """Studies an earlier API process left queued or running are queued again; those it left cancelling are
    cancelled (in distributed mode their dispatched tasks are withdrawn first)."""
    with store.session() as session:
        rows = session.execute(select(StudyRow.id, StudyRow.status).where(StudyRow.status.in_(ACTIVE))).all()
    for study_id, status in rows:
        if status == CANCELLING:
            if distributed:
                from codequant.celery_app import create_app as celery_app
                from codequant_orchestrator.dispatch import withdraw
                from codequant_orchestrator.distributed import STOPPED_WHEN_CANCELLED

                withdraw(celery_app(broker_url), store, study_id, stop_stages=STOPPED_WHEN_CANCELLED)
            bookkeeping.set_study_status(store, study_id, CANCELLED)
        else:
            bookkeeping.set_study_status(store, study_id, "pending")
            runner.submit(study_id)
