"""The same weights give the same bytes whatever the CPU: benchmarks/numerics_probe.py (logits, AQLM codes, greedy
and sampled completions, aqlm's numba kernel on the shipped tiny model) in fresh processes, under the instruction
sets this machine can pretend to be limited to, and with the pins undone one at a time, which must show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from codequant import numerics

REPO = Path(__file__).resolve().parents[2]
DIGESTS = ("logits", "codes", "greedy", "sampled", "numba")


def probe(**environment: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in numerics.PINNED and k != numerics.MODE_ENV}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "numerics_probe.py")],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def unpinned(**changes: str) -> dict[str, str]:
    """The pinned environment with ``changes`` (a value None: left unset), the pin itself switched off."""
    return {numerics.MODE_ENV: "native", **{k: v for k, v in {**numerics.PINNED, **changes}.items() if v}}


@pytest.mark.slow
@pytest.mark.skipif(numerics.settings() is not numerics.PINNED, reason="the pins apply to x86-64 CPUs with AVX2")
def test_codes_and_completions_do_not_depend_on_the_instruction_set() -> None:
    pinned = probe()
    assert pinned["capability"] == "AVX2" and pinned["threads"] == numerics.THREADS
    emulated = [
        probe(MKL_ENABLE_INSTRUCTIONS="AVX2"),  # MKL told the CPU has no AVX-512
        probe(MKL_ENABLE_INSTRUCTIONS="SSE4_2"),  # nor AVX
        # What another machine's environment could say, which the pin overrides: AVX-512 kernels for ATen, MKL's
        # own code path, OpenBLAS's choice of kernels, all the cores.
        probe(ATEN_CPU_CAPABILITY="avx512", MKL_CBWR="AUTO", OPENBLAS_CORETYPE="SkylakeX", OMP_NUM_THREADS="16"),
    ]
    for other in emulated:
        assert {d: other[d] for d in DIGESTS} == {d: pinned[d] for d in DIGESTS}
    # Each pin matters: without it (the other pins kept) the bytes change, so the agreement above is not luck.
    assert probe(**unpinned())["logits"] == pinned["logits"]  # the same settings, set by hand
    assert probe(**unpinned(ATEN_CPU_CAPABILITY="default"))["logits"] != pinned["logits"]  # a CPU without AVX2
    assert probe(**unpinned(MKL_CBWR=""))["logits"] != pinned["logits"]  # MKL's own choice of kernels
    assert probe(**unpinned(OPENBLAS_CORETYPE="Sandybridge"))["numba"] != pinned["numba"]  # an AVX-only CPU
