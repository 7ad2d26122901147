"""Which pin of ``codequant.numerics`` changes which bytes, and what the probe costs with and without the pins.

    .venv/bin/python benchmarks/numerics_pins.py [--rounds N]

Runs benchmarks/numerics_probe.py in fresh processes: pinned; under instruction sets this machine can pretend to
be limited to; and with each pin undone in turn (``CODEQUANT_NUMERICS=native`` with the other pins set by hand).
Prints, per setting, the digests that differ from the pinned run and the probe's seconds (the mean over rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from codequant import numerics

PROBE = Path(__file__).with_name("numerics_probe.py")
DIGESTS = ("logits", "codes", "greedy", "sampled", "numba")


def unpinned(**changes: str) -> dict[str, str]:
    return {numerics.MODE_ENV: "native", **{k: v for k, v in {**numerics.PINNED, **changes}.items() if v}}


SETTINGS: dict[str, dict[str, str]] = {
    "pinned": {},
    "pinned, MKL_ENABLE_INSTRUCTIONS=AVX2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "pinned, MKL_ENABLE_INSTRUCTIONS=SSE4_2": {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "native, nothing pinned": {numerics.MODE_ENV: "native"},
    "pins but ATEN_CPU_CAPABILITY=default": unpinned(ATEN_CPU_CAPABILITY="default"),
    "pins but MKL_CBWR unset": unpinned(MKL_CBWR=""),
    "pins but MKL_CBWR=AVX2": unpinned(MKL_CBWR="AVX2"),
    "pins but OPENBLAS_CORETYPE=Sandybridge": unpinned(OPENBLAS_CORETYPE="Sandybridge"),
    "pins but OPENBLAS_CORETYPE unset": unpinned(OPENBLAS_CORETYPE=""),
    "pins but 1 thread": unpinned(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
}


def probe(environment: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in numerics.PINNED and k != numerics.MODE_ENV}
    done = subprocess.run(
        [sys.executable, str(PROBE)], env={**base, **environment}, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="probes per setting (timings are their mean)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    reference: dict[str, str] | None = None
    for name, environment in SETTINGS.items():
        runs = [probe(environment) for _ in range(args.rounds)]
        result = runs[0]
        reference = reference or result
        differ = [d for d in DIGESTS if result[d] != reference[d]] or ["nothing"]
        seconds = sum(float(r["seconds"]) for r in runs) / len(runs)
        print(f"{name:<42} {result['capability']:<8} differs: {', '.join(differ):<38} {seconds:6.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
