"""`codequant execute`: ordered results, bad input, the store cache of identical programs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import func, select

from codequant.store import Execution, Store
from tests.cli import codequant


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return codequant("execute", *args, timeout=300)


def test_execute_keeps_order_and_caches_identical_programs(tmp_path: Path) -> None:
    records = [
        {
            "name": "a",
            "language": "python",
            "prompt": "def f():\n",
            "completion": "    return 1\n",
            "tests": "assert f() == 1\n",
        },
        {
            "name": "b",
            "language": "java",
            "program": "class P { public static void main(String[] a) { assert 1 == 2; } }",
        },
        {"name": "c", "language": "python", "program": "print('hi')"},
        {
            "name": "a-again",
            "language": "python",
            "prompt": "def f():\n",
            "completion": "    return 1\n",
            "tests": "assert f() == 1\n",
        },
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out.jsonl"
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = run(str(source), "--out", str(out), "--workers", "2", "--timeout", "10", "--store", url)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["name"] for r in rows] == ["a", "b", "c", "a-again"]
    assert [r["status"] for r in rows] == ["OK", "Failure", "OK", "OK"]
    assert rows[2]["stdout"] == "hi\n" and rows[0]["passed"] and not rows[1]["passed"]
    assert rows[0]["execution_key"] == rows[3]["execution_key"]
    store = Store(url)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Execution)) == 3  # identical programs ran once
    again = run(str(source), "--out", str(tmp_path / "again.jsonl"), "--timeout", "10", "--store", url)
    assert again.returncode == 0
    assert [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()] == rows


def test_bad_input_names_file_and_line_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"name": "a", "language": "python", "program": "pass"}\n\n{"name": "b", "language": "rust", '
        '"program": "fn main() {}"}\n'
    )
    out = tmp_path / "out.jsonl"
    result = run(str(source), "--out", str(out))
    assert result.returncode == 2
    assert f"{source}:3: field 'language' must be one of python, java, cpp, javascript, got 'rust'" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
    source.write_text('{"name": "a", "language": "python", "prompt": "x"}\n')
    result = run(str(source), "--out", str(out))
    assert result.returncode == 2 and "missing completion, tests" in result.stderr
    source.write_text("not json\n")
    assert run(str(source), "--out", str(out)).returncode == 2
    assert list(tmp_path.iterdir()) == [source]


def test_every_kind_of_bad_input_is_one_line_exit_2_and_runs_nothing(tmp_path: Path) -> None:
    good = '{"name": "a", "language": "python", "program": "open(\'ran\', \'w\')"}\n'
    cases = {
        "surrogate_in_name": ('{"name": "\\ud800", "language": "python", "program": "pass"}\n', [], "surrogate"),
        "surrogate_in_program": (
            '{"name": "a", "language": "python", "program": "x = \'\\udfff\'"}\n',
            [],
            "surrogate",
        ),
        "nested_brackets": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n", [], "nested too deeply"),
        "not_utf8": (b'{"name": "a", "language": "python", "program": "\xff"}\n', [], "not UTF-8"),
        "timeout_inf": (good, ["--timeout", "inf"], "--timeout"),
        "timeout_nan": (good, ["--timeout", "nan"], "--timeout"),
        "timeout_zero": (good, ["--timeout", "0"], "--timeout"),
        "memory_negative": (good, ["--memory-mb", "-5"], "--memory-mb"),
        "memory_zero": (good, ["--memory-mb", "0"], "--memory-mb"),
        "out_is_a_folder": (good, ["--out-is-folder"], "is a directory"),
    }
    for name, (content, options, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        source = folder / "in.jsonl"
        if isinstance(content, bytes):
            source.write_bytes(content)
        else:
            source.write_text(content if name != "surrogate_in_name" else good + content)
        out = folder / "out.jsonl"
        if options == ["--out-is-folder"]:
            out.mkdir()
            options = []
        result = run(str(source), "--out", str(out), *options)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (name, result.stderr[-500:])
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            {"in.jsonl", *(["out.jsonl"] if out.is_dir() else [])}
        )
