"""HumanEval+ as EvalPlus releases it (``HumanEvalPlus.jsonl``, what the ``evalplus`` package caches): inputs
without expected outputs. The tests built here compute each expected output with the reference solution, in
a namespace of its own inside the sandboxed program, and compare as EvalPlus's evaluator does.

EvalPlus's comparison (``evalplus.eval.unsafe_execute``): equality; else, for float results (``atol`` 0 becomes
1e-6) or a non-zero ``atol``, same type, same length, and ``np.allclose(out, exp, rtol=1e-07, atol=atol)``.
HumanEval/32 ``find_zero`` has its own oracle: any root passes (``|poly(coefficients, out)| <= atol``).
"""

from __future__ import annotations

import json
from typing import Any

from codequant.benchmarks.numpy_standin import STANDIN
from codequant.errors import InputError

RELEASE_KEYS = ("base_input", "plus_input")

_CHECK = """

import copy as _cq_copy
import json as _cq_json

_cq_reference_namespace = {{}}
exec(compile({reference!r}, "<reference solution>", "exec"), _cq_reference_namespace)
_cq_reference = _cq_reference_namespace[{entry_point!r}]
_cq_inputs = _cq_json.loads({inputs!r})


def _cq_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)):
        return all(isinstance(i, float) for i in x)
    return False


def check(candidate):
    for inp in _cq_inputs:
        out = candidate(*_cq_copy.deepcopy(inp))
        atol = {atol!r}
        if {find_zero!r}:
            assert abs(_cq_reference_namespace["poly"](*inp, out)) <= atol, f"not a zero: {{out!r}}"
            continue
        exp = _cq_reference(*_cq_copy.deepcopy(inp))
        if atol == 0 and _cq_is_floats(exp):
            atol = 1e-6
        if out != exp and atol != 0:
            assert type(out) == type(exp), f"{{type(out).__name__}} != {{type(exp).__name__}}"
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp), f"{{out!r}} != {{exp!r}}"
            assert np.allclose(out, exp, rtol=1e-07, atol=atol), f"{{out!r}} != {{exp!r}}"
        else:
            assert out == exp, f"{{out!r}} != {{exp!r}}"
"""


def is_release_row(row: dict[str, Any]) -> bool:
    return all(key in row for key in RELEASE_KEYS)


def release_tests(row: dict[str, Any], where: str) -> str:
    """The ``check`` function (without its call) for a release row's base and extra inputs."""
    inputs = [*row["base_input"], *row["plus_input"]] if all(isinstance(row[k], list) for k in RELEASE_KEYS) else None
    if inputs is None or not all(isinstance(i, list) for i in inputs):
        raise InputError(f"{where}: fields 'base_input' and 'plus_input' must be lists of argument lists")
    atol = row.get("atol", 0)
    if isinstance(atol, bool) or not isinstance(atol, int | float):
        raise InputError(f"{where}: field 'atol' must be a number, got {atol!r}")
    return STANDIN + _CHECK.format(
        reference=row["prompt"] + row["canonical_solution"],
        entry_point=row["entry_point"],
        inputs=json.dumps(inputs),
        atol=atol,
        find_zero=row["entry_point"] == "find_zero",
    )
