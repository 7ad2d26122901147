"""The layout's import rules (pyproject.toml [tool.importlinter]) hold, and break when an import breaks them."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
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
    assert "14 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # the two violations this rule set was written against
        ("codequant/model_source.py", "from codequant_serving import cli", "The shared library imports no service"),
        ("codequant_generator/stage.py", "import codequant_serving.engine", "Services import only the shared"),
        ("codequant_executor/api.py", "import codequant_quantizer.api", "Services import only the shared"),
        ("codequant_reporter/report.py", "from codequant_executor import api", "Services import only the shared"),
        ("codequant_generator/api.py", "import torch", "import no torch"),
        ("codequant_generator/api.py", "import codequant_orchestrator.plan", "No service imports the orchestrator"),
        ("codequant/keys.py", "import codequant.results", "No import circle between the modules"),
        # the circle the AQLM planner once made, hidden by an import inside a function (lazy imports count)
        (
            "codequant_quantizer/aqlm/planner/run.py",
            "def _variant(v):\n    from codequant_quantizer.api import variant_model\n    return variant_model(v)",
            "Quantizer layers",
        ),
        ("codequant_quantizer/aqlm/weight.py", "from codequant_quantizer.aqlm import layer", "AQLM layers"),
        ("codequant_quantizer/aqlm/planner/shapes.py", "from codequant_quantizer.aqlm.planner import peaks", "planner"),
        ("codequant_reporter/analysis.py", "from codequant_reporter import tables", "Reporter layers"),
        ("codequant_executor/pool.py", "from codequant_executor import api", "Executor layers"),
        ("codequant_executor/sandbox/process.py", "from codequant_executor.sandbox import command", "Sandbox layers"),
        ("codequant_generator/clients/base.py", "from codequant_generator import stage", "Generator layers"),
        ("codequant_serving/engine.py", "from codequant_serving import server", "Serving layers"),
        ("codequant_orchestrator/plan.py", "from codequant_orchestrator import stages", "Orchestrator layers"),
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
    within = module.removesuffix(".py").replace("/", ".").split(".", 1)[1]  # the circle contract names it relatively
    assert contract in broken and within in broken, result.stdout[-3000:]


# -- benchmarks use the services' public entry points ---------------------------------------------------------
#: A service's public entry points: the objects its pyproject declares as entry points, its ``api``, ``stage``,
#: ``cli`` and ``tasks`` modules (public names; those in ``__all__`` where the module has one), and what a package
#: of it exports in ``__all__`` (``codequant_quantizer.aqlm``: the AQLM implementation's pieces).
PUBLIC_MODULES = ("api", "stage", "cli", "tasks")
SOURCES = {path.name: path for path in PACKAGES}


def _source(module: str) -> Path | None:
    """The file of a codequant module (a package's __init__), found without importing it."""
    root, *rest = module.split(".")
    base = SOURCES[root].joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _all(module: str) -> set[str] | None:
    """The names ``module`` lists in ``__all__``; None without one."""
    source = _source(module)
    tree = ast.parse(source.read_text()) if source else ast.Module(body=[], type_ignores=[])
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def _entry_points() -> set[tuple[str, str]]:
    """(module, object) of every entry point the distributions declare."""
    found = set()
    for pyproject in [REPO / "shared" / "pyproject.toml", *REPO.glob("services/*/pyproject.toml"),
                      REPO / "models" / "tiny" / "pyproject.toml"]:  # fmt: skip
        groups = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {})
        for group in groups.values():
            found |= {tuple(value.split(":")) for value in group.values() if ":" in value}
    return found


def _service_imports(path: Path) -> list[tuple[str, str | None]]:
    """(module, name or None) of every import of a service in ``path``, at any depth (lazy imports count)."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name.split(".")[0] in SOURCES]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in SOURCES:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule, None) if _source(submodule) else (node.module, alias.name))
    return [(module, name) for module, name in found if not module.startswith("codequant.")]


def _public(module: str, name: str | None, entry_points: set[tuple[str, str]]) -> bool:
    if module == "codequant" or (name is not None and (module, name) in entry_points):
        return True
    exported = _all(module)
    if name is None:
        return module.split(".", 1)[-1] in PUBLIC_MODULES and module.count(".") == 1
    if exported is not None:
        return name in exported
    return module.split(".", 1)[-1] in PUBLIC_MODULES and module.count(".") == 1 and not name.startswith("_")


def test_benchmarks_use_the_services_public_entry_points_only() -> None:
    entry_points = _entry_points()
    uses = [(path.name, *use) for path in sorted((REPO / "benchmarks").glob("*.py")) for use in _service_imports(path)]
    assert len({module.split(".")[0] for _, module, _ in uses}) >= 5  # it sees the services they use: not blind
    internal = [
        f"{path} imports {module}.{name or ''}"
        for path, module, name in uses
        if not _public(module, name, entry_points)
    ]
    assert not internal, internal


def test_the_public_entry_point_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bench.py"
    bad.write_text("def f():\n    from codequant_quantizer.aqlm.layer import quantize_layer\n")
    assert _service_imports(bad) == [("codequant_quantizer.aqlm.layer", "quantize_layer")]
    assert not _public("codequant_quantizer.aqlm.layer", "quantize_layer", _entry_points())
    assert _public("codequant_quantizer.aqlm", "quantize_layer", _entry_points())
    assert not _public("codequant_quantizer.api", "_locked", _entry_points())
    assert _public("codequant_tiny.build", "build_tiny_model", _entry_points())
