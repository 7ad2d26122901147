"""Software versions and hardware of the machine doing a piece of work, recorded with its job.

Each stage describes its own machine (a quantizer on a GPU host, executors in containers, the reporter
elsewhere), so a report states where each stage ran instead of where the report was rendered.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import subprocess
from importlib import metadata

from codequant import numerics

#: What describes the machine whatever the stage.
_ALWAYS = ("codequant-shared",)


@functools.cache
def describe(packages: tuple[str, ...] = (), commands: tuple[str, ...] = ()) -> dict[str, str]:
    """Python, platform, CPU, memory, GPUs, and the versions of ``packages`` (those installed) and ``commands``
    (programs asked for ``--version``, ``java`` for ``-version``). Read without importing the packages; cached
    per process."""
    info = {"python": platform.python_version(), "platform": platform.platform()}
    for package in (*_ALWAYS, *packages):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    for command in commands:
        info[command] = _command_version(command)
    info["cpu"] = _cpu_model()
    info["cpu_cores"] = str(os.cpu_count())
    with contextlib.suppress(ValueError, OSError):
        info["memory_gib"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}"
    info["gpu"] = _gpus()
    info["numerics"] = numerics.describe()
    return info


def _command_version(command: str) -> str:
    if shutil.which(command) is None:
        return "not installed"
    try:
        flag = "-version" if command == "java" else "--version"  # the JDK's tools predate GNU-style options
        done = subprocess.run([command, flag], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _gpus() -> str:
    if shutil.which("nvidia-smi") is None:
        return "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return "; ".join(out.splitlines()) or "none"
