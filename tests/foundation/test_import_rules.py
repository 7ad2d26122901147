"""The layout's import rules (pyproject.toml [tool.importlinter]) hold, and break when an import breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = [
    REPO / "shared" / "src" / "codequant",
    *(REPO / "services").glob("*/src/codequant_*"),
    REPO / "models" / "tiny" / "src" / "codequant_tiny",
]


def lint_imports(path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts, on the packages under ``path`` (default: the checkout)."""
    env = {**os.environ, "PYTHONPATH": str(path)} if path else dict(os.environ)
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the two violations this rule set was written against
        ("codequant/model_source.py", "from codequant_serving import cli", "The shared library imports no service"),
        ("codequant_generator/stage.py", "import codequant_serving.engine", "Services import only the shared"),
        ("codequant_executor/api.py", "import codequant_quantizer.api", "Services import only the shared"),
        ("codequant_reporter/report.py", "from codequant_executor import api", "Services import only the shared"),
        ("codequant_generator/api.py", "import torch", "import no torch"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    for package in PACKAGES:
        shutil.copytree(package, tmp_path / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # injected by the test\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    broken = result.stdout.split("Broken contracts")[-1]
    assert f"{contract}" in broken and module.removesuffix(".py").replace("/", ".") in broken, result.stdout[-3000:]
