"""A study with a user's own benchmark file (C++) beside a built-in one: the report gives it its own table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from codequant.store import Store
from codequant_reporter.report import write_report
from tests.reporter.synthetic import SPEC, write_study

USER_FILE = Path(__file__).resolve().parents[1] / "data" / "benchmarks" / "multiple-humaneval-cpp.jsonl"


def test_a_user_benchmark_gets_its_own_table_in_its_language(tmp_path: Path) -> None:
    head = SPEC.split("benchmarks:")[0]
    spec = (
        f"{head}benchmarks:\n  - {{name: multiple-humaneval-py, limit: 6}}\n"
        f"  - {{name: my-cpp, path: {USER_FILE}}}\nsampling: {{n: 6}}\nstatistics: {{bootstrap_samples: 200}}\n"
    )
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "study.yaml").write_text(spec)
    write_study(Store(f"sqlite:///{folder / 'store.db'}"), spec=spec)
    write_report(folder)
    out = folder / "report"
    with (out / "table3-my-cpp.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][4:] == ["C++ pass@1", "C++ OR"]
    payload = json.loads((out / "report.json").read_text())
    found = {(c["labels"]["benchmark"], c["labels"].get("language")) for c in payload["comparisons"]}
    assert found == {("multiple-humaneval-py", "python"), ("my-cpp", "cpp")}
