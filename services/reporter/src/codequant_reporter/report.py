"""``write_report``: a study's tables, plots and methods in every requested format; ``build_report``: the report
stage on typed payloads (the Celery task and the embedded runner call it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from codequant import settings
from codequant.environment import describe
from codequant.errors import InputError
from codequant.jsonl import atomic_writer
from codequant.payloads import ReportRequest, ReportResult
from codequant.store import Store
from codequant.study import parse_study
from codequant_reporter import FORMATS, render
from codequant_reporter.analysis import Analysis, analyse
from codequant_reporter.cost import cost_table
from codequant_reporter.export import check_target, export_report
from codequant_reporter.failures import load_samples
from codequant_reporter.flip_tables import flip_tables, lost_problems_html
from codequant_reporter.methods_section import PACKAGES, methods_section
from codequant_reporter.noninferiority_table import noninferiority_table
from codequant_reporter.perplexity_vs_pass import perplexity_vs_pass_table
from codequant_reporter.plots import PLOTS
from codequant_reporter.reading_guide import perplexity_note, reading_guide
from codequant_reporter.study_data import load_study_data
from codequant_reporter.tables import (
    calibration_table,
    comparisons_table,
    memory_table,
    model_size_table,
    pass1_tables,
)
from codequant_reporter.verdict_checks import verdict_check_sections


def resolve(source: str | Path, store_url: str | None) -> tuple[Store, str, Path]:
    """(store, study id, default output folder) for a study output folder or a study id."""
    path = Path(source)
    if path.is_dir():
        spec = path / "study.yaml"
        if not spec.is_file():
            raise InputError(f"{path}: not a study output folder (no study.yaml)")
        study = parse_study(spec.read_text(encoding="utf-8"), source=str(spec))
        url = store_url or settings.store_url(study.store_url or f"sqlite:///{(path / 'store.db').resolve()}")
        return Store(url), study.name, path / "report"
    url = store_url or settings.store_url()
    if not url:
        raise InputError(f"{source}: not a folder; to report a study id give --store or ${settings.STORE_URL_ENV}")
    return Store(url), str(source), Path("runs") / str(source) / "report"


def build_report(request: ReportRequest) -> ReportResult:
    """The report stage: the study's report from the store into the request's folder."""
    written = write_report(request.study_id, Path(request.out_dir), request.formats, store_url=request.store_url)
    return ReportResult(files={k: str(v) for k, v in written.items()}, environment=describe(PACKAGES))


def write_report(
    source: str | Path,
    out_dir: Path | None = None,
    formats: Sequence[str] = FORMATS,
    *,
    store_url: str | None = None,
) -> dict[str, Path]:
    """Write the report of a study (an output folder, or a study id in a store); returns the files written."""
    return _render(source, out_dir, formats, store_url)[1]


def write_and_export_report(
    source: str | Path,
    target: str,
    out_dir: Path | None = None,
    formats: Sequence[str] = FORMATS,
    *,
    store_url: str | None = None,
    experiment: str | None = None,
) -> tuple[dict[str, Path], str]:
    """``write_report``, then log its metrics and files to ``target`` (mlflow | wandb); (files, where the run is).
    A target whose package is missing is an InputError before anything is written."""
    check_target(target)
    analysis, written = _render(source, out_dir, formats, store_url)
    return written, export_report(target, analysis, written, experiment=experiment)


def _render(
    source: str | Path, out_dir: Path | None, formats: Sequence[str], store_url: str | None
) -> tuple[Analysis, dict[str, Path]]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"unknown report format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    store, study_id, default_out = resolve(source, store_url)
    out = Path(out_dir) if out_dir else default_out
    data = load_study_data(store, study_id)
    analysis = analyse(data)
    tables = [*pass1_tables(analysis)]
    calibration = calibration_table(analysis)
    if calibration is not None:
        tables.append(calibration)
    cost = cost_table(data)
    note = perplexity_note(data)
    if note:
        cost.notes.append(note)
    tables += [model_size_table(analysis), memory_table(data), cost, comparisons_table(analysis)]
    tables.append(noninferiority_table(analysis))
    samples = load_samples(store, data)
    tables += flip_tables(analysis, samples)
    tables += [t for t in [perplexity_vs_pass_table(analysis)] if t is not None]
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots = []
    for name, draw in PLOTS.items():
        plots.append(draw(analysis, out / name))
        written[name] = out / name
    sections = methods_section(data) + verdict_check_sections(data.verdict_checks)
    title = f"codequant report — {data.study.name}"
    guide = reading_guide(data)
    if "md" in formats:
        written["md"] = _write(out / "report.md", render.markdown(title, tables, plots, sections, guide))
    if "html" in formats:
        written["html"] = _write(
            out / "report.html",
            render.html_page(title, tables, plots, sections, lost_problems_html(analysis, samples), guide),
        )
    if "csv" in formats:
        for table in tables:
            written[f"{table.key}.csv"] = _write(out / f"{table.key}.csv", render.csv_text(table))
    if "tex" in formats:
        written["tex"] = _write(out / "tables.tex", render.latex(tables))
    if "json" in formats:
        payload = {
            "study": data.study.model_dump(mode="json"),
            "comparisons": [c.to_dict() for c in analysis.main.values()],
            "calibration": [
                {"model": v.model, "variant": v.name, "reference": twin.name, "benchmark": b, **c.to_dict()}
                for twin, v, b, c in analysis.calibration
            ],
            "tables": {
                t.key: {"title": t.title, "columns": t.columns, "rows": t.rows, "records": t.records} for t in tables
            },
            "methods": dict(sections),
        }
        written["json"] = _write(out / "report.json", render.json_text(payload))
    return analysis, written


def _write(path: Path, text: str) -> Path:
    with atomic_writer(path) as handle:
        handle.write(text)
    return path
