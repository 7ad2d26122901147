"""Pinned CPU numerics: the same weights give the same codes, completions and perplexities on every x86-64 CPU
with AVX2 (Intel since 2013, AMD since 2015), whatever its vendor, its wider vector units or its core count.

A float32 result depends on the order of its additions and on whether multiply-adds are fused, and the libraries
under torch choose both per CPU (measured in docs/performance.md, "Same numbers on every CPU"):

- ATen, torch's own kernels, is compiled for several instruction sets and runs the widest the CPU has: AVX-512
  and AVX2 kernels add in other orders (softmax, random normal numbers). Capped at AVX2 (``ATEN_CPU_CAPABILITY``).
- MKL, torch's matrix products, picks its kernels by CPU vendor and model. Its conditional numerical
  reproducibility mode ``COMPATIBLE`` runs one code path on every x86-64 CPU (``MKL_CBWR``).
- oneDNN and numba (aqlm's CPU kernel) generate code for the CPU they run on: capped at AVX2 / Haswell.
- How work is split between threads changes sums: a fixed number of threads (``THREADS``), whatever the cores.

The libraries read these settings once, when they load, so ``pin()`` must run before torch is imported: the
``codequant`` command calls it first thing, and the processes it starts (model servers, workers) inherit the
environment. ``CODEQUANT_NUMERICS=native`` leaves every library its own choice (faster on a large CPU; results then
depend on the machine).
"""

from __future__ import annotations

import os
import sys

MODE_ENV = "CODEQUANT_NUMERICS"
#: Threads for torch, MKL and OpenMP: a fixed split of the work whatever the machine's cores.
THREADS = 2
#: The environment that pins the numerics; set before torch (or numba) loads.
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NUMBA_CPU_NAME": "haswell",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
}


def pinned() -> bool:
    """Whether this process pins its numerics (anything but ``CODEQUANT_NUMERICS=native``)."""
    return os.environ.get(MODE_ENV, "pinned") != "native"


def pin() -> None:
    """Put the pinned settings into this process's environment (inherited by the processes it starts).

    Call before torch is imported; where torch is already loaded, its thread count is fixed here too and
    ``check()`` says what could not be changed any more."""
    if not pinned():
        return
    os.environ.update(PINNED)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(THREADS)


def pin_threads() -> None:
    """Give the calling thread the pinned thread count (torch's count is per thread under OpenMP)."""
    if pinned() and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(THREADS)


def check() -> str | None:
    """Why this process's numerics are not the pinned ones (torch loaded before ``pin()``), or None."""
    if not pinned() or "torch" not in sys.modules:
        return None
    torch = sys.modules["torch"]
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "DEFAULT"):  # DEFAULT: a CPU without AVX2, which the pin cannot help
        return f"torch runs {capability} kernels: it was imported before codequant.numerics.pin()"
    return None


def describe() -> str:
    """One line for a job's environment record: the numerics its results were computed with."""
    if not pinned():
        return f"native ({MODE_ENV}=native: results depend on the CPU)"
    return ", ".join(f"{name}={value}" for name, value in PINNED.items())
