"""Results store on SQLite and PostgreSQL, deterministic keys, JSONL I/O."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from codequant.errors import InputError, ServiceError
from codequant.jsonl import JsonlAppender, read_jsonl, write_jsonl
from codequant.keys import completion_key, execution_key, stable_hash
from codequant.store import Completion, Execution, Store, Study, Variant


def test_store_creates_every_table_and_inserts_idempotently(store_url: str) -> None:
    store = Store(store_url)
    tables = set(inspect(store.engine).get_table_names())
    assert {"studies", "variants", "study_variants", "completions", "executions", "comparisons", "jobs"} <= tables
    with store.session() as session:
        session.add(Study(id="s", spec_yaml="name: s", spec_hash="h"))
        session.add(Variant(key="v1", model_name="m", variant_name="fp16", method="baseline"))
    rows = [
        {"key": f"c{i}", "variant_key": "v1", "benchmark": "b", "problem": "p", "sample": i, "completion": "x"}
        for i in range(1200)
    ]
    assert store.insert_ignore(Completion, rows) == 1200
    assert store.insert_ignore(Completion, [*rows[:10], {**rows[0], "key": "new", "completion": "y"}]) == 1
    assert store.existing_keys(Completion, ["c0", "c1199", "missing", "new"]) == {"c0", "c1199", "new"}
    with store.session() as session:
        assert session.scalar(select(Completion.completion).where(Completion.key == "c0")) == "x"
    execution = {"key": "e", "language": "python", "status": "OK", "passed": True, "exit_code": 0, "duration_s": 0.1}
    assert store.insert_ignore(Execution, [execution]) == 1
    assert Store(store_url).existing_keys(Execution, ["e"]) == {"e"}  # a second process sees it
    store.dispose()


def test_store_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(Study(id="s", spec_yaml="", spec_hash=""))
        session.flush()
        raise RuntimeError("crash mid-transaction")
    with store.session() as session:
        assert session.scalar(select(Study).where(Study.id == "s")) is None


def test_store_bad_urls_are_one_line_errors() -> None:
    with pytest.raises(InputError, match="store URL"):
        Store("not a url")
    with pytest.raises(ServiceError, match="cannot open the results store"):
        Store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_keys_are_stable_and_sensitive() -> None:
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    sampling = {"temperature": 0.2, "top_p": 0.95, "max_new_tokens": 1024, "seed": 0}
    base = completion_key("v", "b", "p", 0, sampling)
    assert base == completion_key("v", "b", "p", 0, dict(reversed(sampling.items())))
    assert base != completion_key("v", "b", "p", 1, sampling)
    assert base != completion_key("v", "b", "p", 0, {**sampling, "temperature": 0.8})
    limits = {"timeout_s": 15, "memory_mb": 1024}
    assert execution_key("print(1)", "python", limits) != execution_key("print(1)", "java", limits)
    assert execution_key("print(1)", "python", limits) != execution_key(
        "print(1)", "python", {**limits, "timeout_s": 1}
    )


def test_jsonl_roundtrip_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.jsonl"
    assert write_jsonl(path, [{"a": 1}, {"b": "é"}]) == 2
    assert list(read_jsonl(path)) == [{"a": 1}, {"b": "é"}]
    path.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(InputError, match=r"r\.jsonl:3: invalid JSON"):
        list(read_jsonl(path))
    with pytest.raises(InputError, match="file not found"):
        list(read_jsonl(tmp_path / "absent.jsonl"))


def test_gzipped_jsonl_is_read_with_the_same_line_precise_errors(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"a": 1}\n{"b": "\xc3\xa9"}\n'))
    assert list(read_jsonl(path)) == [{"a": 1}, {"b": "é"}]
    path.write_bytes(gzip.compress(b'{"a": 1}\n{"b": "\xff"}\n'))
    with pytest.raises(InputError, match=r"r\.jsonl\.gz:2: not UTF-8 text \(byte 0xff\)"):
        list(read_jsonl(path))
    path.write_bytes(b"plain text, not gzip")
    with pytest.raises(InputError, match=r"r\.jsonl\.gz: not a readable gzip file"):
        list(read_jsonl(path))


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"

    def records():
        yield {"a": 1}
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(path, records())
    assert list(tmp_path.iterdir()) == []


def test_appender_recovers_from_a_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n{"a": 2')  # a crash in the middle of a line
    assert list(read_jsonl(path, allow_truncated_tail=True)) == [{"a": 1}]
    with JsonlAppender(path) as appender:
        appender.write({"a": 3})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"a": 3}]
