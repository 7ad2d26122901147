"""The `codequant` command as tests run it: a fresh interpreter, output captured, a time limit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-c", "from codequant.cli import main; main()"]


def codequant(*args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``codequant ARGS...`` run to its end within ``timeout`` seconds."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def codequant_ok(*args: str | Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """``codequant ARGS...``, which must exit 0 (else the test fails with its stderr)."""
    result = codequant(*args, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return result
