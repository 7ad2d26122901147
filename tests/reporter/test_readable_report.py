"""A report a newcomer can read: a guide at the top, one sign convention, titles that say what a table shows, bits
per weight as the method names them, and fixture artefacts flagged."""

from __future__ import annotations

import json
from pathlib import Path

from codequant.store import Store
from codequant.study import parse_study
from codequant_reporter.reading_guide import perplexity_note, reading_guide
from codequant_reporter.report import write_report
from codequant_reporter.study_data import ModelData, StudyData
from tests.reporter.synthetic import SPEC, write_study

REPO = Path(__file__).resolve().parents[2]


def test_the_report_reads_one_way(tmp_path: Path) -> None:
    spec = SPEC.replace("{name: rtn-4bit, method: rtn, bits: 4}", "{name: rtn-4bit, method: rtn, bits: 3}")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(spec)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"), spec=spec)
    write_report(folder, formats=["md", "json"])
    md = (folder / "report" / "report.md").read_text()
    payload = json.loads((folder / "report" / "report.json").read_text())
    assert md.splitlines()[2].startswith("How to read this report.")
    assert "Fixture model" not in md
    assert not any("Dec" in column for table in payload["tables"].values() for column in table["columns"])
    titles = [t["title"] for t in payload["tables"].values()]
    assert not any(title.startswith("Table") for title in titles)
    assert "Table 3 layout of the reference study" in md and "Table 6 layout of the reference study" in md
    # One sign convention: the model-size table's change is the comparisons' relative change, sign included.
    change = {c["labels"]["model"] + c["variant"] + c["labels"]["benchmark"]: c for c in payload["comparisons"]}
    for record in payload["tables"]["table6-model-size"]["records"]:
        for benchmark, values in record.items():
            if isinstance(values, dict):
                expected = change[record["model"] + record["variant"] + benchmark]["relative_change_pct"]
                assert values["change_pct"] == expected
    assert all(
        r["change_pp"] < 0 for r in payload["tables"]["noninferiority"]["records"] if r["variant"] == "aqlm-2bit"
    )
    memory = payload["tables"]["memory"]
    bits = memory["columns"].index("Bits/weight")
    rtn = next(row for row in memory["rows"] if row[1] == "rtn-4bit")
    assert rtn[2] == "3-bit RTN g128" and rtn[bits] == "3"


def test_a_fixture_model_is_flagged() -> None:
    demo = parse_study((REPO / "examples" / "demo.yaml").read_text())
    data = StudyData(demo, [ModelData("tiny-code", "2.3M", None, [])], {}, {})
    guide = reading_guide(data)
    assert guide[0].startswith("How to read this report.") and "margin of 2 pp" in guide[0]
    assert guide[1].startswith("Fixture model (tiny-code)")
    assert "perplexity may fall as quantization gets harsher" in (perplexity_note(data) or "")
