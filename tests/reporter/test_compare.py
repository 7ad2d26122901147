"""compare(): paired tables, identical inputs, and input errors that name the problem."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codequant.errors import InputError
from codequant_reporter.compare import compare
from tests.cli import codequant


def records(outcomes: dict[str, list[bool]]) -> list[dict]:
    return [{"name": p, "sample": s, "passed": v} for p, vs in outcomes.items() for s, v in enumerate(vs)]


@given(
    st.dictionaries(
        st.text("abc", min_size=1, max_size=3), st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=8
    )
)
def test_identical_inputs_give_p_1_and_or_1(outcomes: dict[str, list[bool]]) -> None:
    (result,) = compare(records(outcomes), {"same": records(outcomes)}, bootstrap_samples=100)
    assert result.mcnemar_p == 1.0 and result.odds_ratio == 1.0 and result.adjusted_p == 1.0
    assert result.table["baseline_only"] == result.table["variant_only"] == 0
    assert result.pass1 == result.baseline_pass1
    assert result.relative_change_pct in (0.0, None)


@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=4, max_size=60))
def test_table_counts_paired_samples(pairs: list[tuple[bool, bool]]) -> None:
    base = {f"p{i // 4}": [] for i in range(len(pairs) - len(pairs) % 4)}
    var = {name: [] for name in base}
    for i, (b, v) in enumerate(pairs[: len(base) * 4]):
        base[f"p{i // 4}"].append(b)
        var[f"p{i // 4}"].append(v)
    if not base:
        return
    (result,) = compare(records(base), {"v": records(var)}, bootstrap_samples=100)
    flat = pairs[: len(base) * 4]
    assert result.table == {
        "both": sum(b and v for b, v in flat),
        "baseline_only": sum(b and not v for b, v in flat),
        "variant_only": sum(v and not b for b, v in flat),
        "neither": sum(not (b or v) for b, v in flat),
    }
    swapped = compare(records(var), {"v": records(base)}, bootstrap_samples=100)[0]
    assert swapped.mcnemar_p == pytest.approx(result.mcnemar_p)


def test_variants_form_one_bh_family_and_memory_reduction() -> None:
    rng = random.Random(0)
    base = {f"p{i}": [rng.random() < 0.7 for _ in range(10)] for i in range(30)}
    slightly = {p: [v and rng.random() < 0.97 for v in vs] for p, vs in base.items()}
    badly = {p: [v and rng.random() < 0.3 for v in vs] for p, vs in base.items()}
    results = compare(
        records(base),
        {"8bit": records(slightly), "2bit": records(badly)},
        ks=(1, 5),
        bootstrap_samples=300,
        footprints={"baseline": 1000, "8bit": 500, "2bit": 250},
    )
    by_name = {r.variant: r for r in results}
    assert by_name["2bit"].significance == "***" and by_name["2bit"].significant
    assert by_name["2bit"].odds_ratio > 5 and by_name["2bit"].memory_reduction_pct == 75.0
    assert by_name["8bit"].adjusted_p >= by_name["8bit"].mcnemar_p
    assert by_name["2bit"].pass_at_k["pass@5"] >= by_name["2bit"].pass_at_k["pass@1"]
    _low, high = by_name["2bit"].bootstrap_ci
    assert high < 0 and by_name["2bit"].wilcoxon_p < 0.001


def test_bad_inputs_are_named() -> None:
    base = records({"a": [True, False], "b": [True, True]})
    with pytest.raises(InputError, match="missing from v: b"):
        compare(base, {"v": records({"a": [True, False]})})
    with pytest.raises(InputError, match="missing from the baseline: c"):
        compare(base, {"v": records({"a": [True, False], "b": [True, True], "c": [False, False]})})
    with pytest.raises(InputError, match="unequal samples for a"):
        compare(base, {"v": records({"a": [True], "b": [True, True]})})
    with pytest.raises(InputError, match=r"duplicated samples \('a', 0\)"):
        compare(
            base,
            {"v": [*records({"a": [True, False], "b": [True, True]}), {"name": "a", "sample": 0, "passed": False}]},
        )
    with pytest.raises(InputError, match="boolean 'passed'"):
        compare(base, {"v": [{"name": "a", "sample": 0, "passed": "yes"}]})
    with pytest.raises(InputError, match="pass@k needs"):
        compare(base, {"v": base}, ks=(3,))


def test_compare_cli(tmp_path: Path) -> None:
    rng = random.Random(1)
    base = {f"p{i}": [rng.random() < 0.6 for _ in range(5)] for i in range(20)}
    worse = {p: [v and rng.random() < 0.5 for v in vs] for p, vs in base.items()}
    for name, data in (("base", base), ("q2", worse)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(data)))
    result = codequant(
        "compare",
        "--baseline",
        str(tmp_path / "base.jsonl"),
        str(tmp_path / "q2.jsonl"),
        "--json",
        "--k",
        "1,5",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["variant"] == "q2" and set(row["pass_at_k"]) == {"pass@1", "pass@5"}
    table = codequant("compare", "--baseline", str(tmp_path / "base.jsonl"), str(tmp_path / "q2.jsonl"), timeout=120)
    assert table.returncode == 0 and "q2" in table.stdout and "McNemar" in table.stdout
    (tmp_path / "bad.jsonl").write_text('{"name": "p0", "sample": 0, "passed": true}\n')
    bad = codequant("compare", "--baseline", str(tmp_path / "base.jsonl"), str(tmp_path / "bad.jsonl"), timeout=120)
    assert bad.returncode == 2 and "missing from" in bad.stderr and "Traceback" not in bad.stderr
