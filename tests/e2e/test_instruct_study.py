"""A study in instruct mode through `codequant run`: the tiny model answers through its chat template, a quantized
variant keeps that template, answers and extracted code are stored, results run against the shipped tests."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from codequant.jsonl import read_jsonl
from codequant.store import ChatAnswer, Completion, Execution, Store

STUDY = """\
name: instruct-e2e
output_dir: {out}
models:
  - name: tiny
    builtin: {{kind: tiny-code, profile: test}}
    variants:
      - {{name: fp32, method: baseline}}
      - {{name: rtn-2bit, method: rtn, bits: 2, group_size: 64}}
benchmarks:
  - {{name: humaneval, limit: 4, max_new_tokens: 256, prompt_mode: instruct}}
  - {{name: mceval-java, limit: 2, max_new_tokens: 256, prompt_mode: instruct}}
sampling: {{n: 2}}
statistics: {{bootstrap_samples: 200}}
"""


def test_an_instruct_study_runs_end_to_end(tiny_model: Path, run_study) -> None:
    out, run = run_study(STUDY)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]

    assert (out / "artifacts" / "tiny" / "rtn-2bit" / "chat_template.jinja").is_file()  # the quantized copy kept it
    store = Store(f"sqlite:///{out / 'store.db'}")
    with store.session() as session:
        completions = session.scalar(select(func.count()).select_from(Completion))
        assert completions == 2 * (4 + 2) * 2
        assert session.scalar(select(func.count()).select_from(ChatAnswer)) == completions
        assert (
            session.scalar(select(func.count()).select_from(Completion).where(Completion.execution_key.is_(None))) == 0
        )
        passed = session.scalar(
            select(func.count())
            .select_from(Completion)
            .join(Execution, Execution.key == Completion.execution_key)
            .where(Execution.passed.is_(True))
        )
    assert passed > 0

    records = list(read_jsonl(out / "results" / "tiny" / "fp32" / "humaneval.jsonl"))
    assert len(records) == 4 * 2 and {r["prompt_mode"] for r in records} == {"instruct"}
    for record in records:
        assert record["raw_completion"].startswith(record["completion"][:40])  # both begin with the prompt
    assert any(r["passed"] for r in records)
    report = json.loads((out / "report" / "report.json").read_text())
    assert report
    methods = (out / "report" / "report.md").read_text()
    assert "Prompt mode: humaneval instruct" in methods
