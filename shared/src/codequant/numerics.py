"""Pinned CPU numerics: the same weights give the same codes, completions and perplexities on every x86-64 CPU
with AVX2 (Intel since 2013, AMD since 2015), whatever its vendor, its wider vector units or its core count.

A float32 result depends on the order of its additions and on whether multiply-adds are fused, and the libraries
under torch choose both per CPU (measured in docs/performance.md, "Same numbers on every CPU"):

- ATen, torch's own kernels, is compiled for several instruction sets and runs the widest the CPU has: AVX-512
  and AVX2 kernels add in other orders (softmax, random normal numbers). Capped at AVX2 (``ATEN_CPU_CAPABILITY``).
- MKL, torch's matrix products, picks its kernels by CPU vendor and model. Its conditional numerical
  reproducibility mode ``COMPATIBLE`` runs one code path on every x86-64 CPU (``MKL_CBWR``).
- OpenBLAS (the matrix product inside aqlm's numba CPU kernel, through SciPy) picks its kernels by CPU model:
  Haswell's, the AVX2 kernels, on every CPU (``OPENBLAS_CORETYPE``). oneDNN is capped at AVX2 as well.
- How work is split between threads changes sums: a fixed number of threads (``THREADS``), whatever the cores.

The libraries read these settings once, when they load, so ``pin()`` must run before torch is imported: the
``codequant`` command calls it first thing, and the processes it starts (model servers, workers) inherit the
environment. ``CODEQUANT_NUMERICS=native`` leaves every library its own choice (faster on a large CPU; results then
depend on the machine).
"""

from __future__ import annotations

import os
import platform
import sys

MODE_ENV = "CODEQUANT_NUMERICS"
#: Threads for torch, MKL and OpenMP: a fixed split of the work whatever the machine's cores.
THREADS = 2
#: The environment that pins the numerics of an x86-64 CPU with AVX2; set before torch (or SciPy) loads.
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "OMP_NUM_THREADS": str(THREADS),
    "MKL_NUM_THREADS": str(THREADS),
}
#: What a CPU without AVX2 (or not x86-64) still gets: the threads. Its numbers differ from the pinned ones.
THREADS_ONLY = {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}


def pinned() -> bool:
    """Whether this process pins its numerics (anything but ``CODEQUANT_NUMERICS=native``)."""
    return os.environ.get(MODE_ENV, "pinned") != "native"


def settings() -> dict[str, str]:
    """The pinned environment for this machine: ``PINNED`` on an x86-64 CPU with AVX2, else ``THREADS_ONLY``
    (OpenBLAS forced to Haswell kernels would stop with an illegal instruction on an older CPU)."""
    if platform.machine().lower() in ("x86_64", "amd64") and "avx2" in _cpu_flags():
        return PINNED
    return THREADS_ONLY


def pin() -> None:
    """Put the pinned settings into this process's environment (inherited by the processes it starts).

    Call before torch is imported: where torch is already loaded only its thread count can still be fixed."""
    if not pinned():
        return
    os.environ.update(settings())
    pin_threads()


def pin_threads() -> None:
    """Give the calling thread the pinned thread count (torch's count is per thread under OpenMP)."""
    if pinned() and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(THREADS)


def describe() -> str:
    """One line for a job's environment record: the numerics its results were computed with."""
    if not pinned():
        return f"native ({MODE_ENV}=native: results depend on the CPU)"
    pins = settings()
    note = "" if pins is PINNED else " (no AVX2: results differ from AVX2 machines)"
    return ", ".join(f"{name}={value}" for name, value in pins.items()) + note


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()
