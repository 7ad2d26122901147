"""The layout the architecture promises: one distribution per service, the CLI assembled from entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from codequant.cli import openmp_wait_policy

REPO = Path(__file__).resolve().parents[2]
SERVICES = ["orchestrator", "quantizer", "serving", "generator", "executor", "reporter"]
TORCH_FREE = ["executor", "generator", "reporter", "orchestrator"]


def project(path: Path) -> dict:
    return tomllib.loads(path.read_text())["project"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_its_own_distribution_on_the_shared_library(service: str) -> None:
    meta = project(REPO / "services" / service / "pyproject.toml")
    assert meta["name"] == f"codequant-{service}"
    assert "codequant-shared" in meta["dependencies"]
    assert meta["entry-points"]["codequant.cli"] == {service: f"codequant_{service}.cli:register"}


@pytest.mark.parametrize("service", TORCH_FREE)
def test_light_services_do_not_depend_on_torch(service: str) -> None:
    deps = " ".join(project(REPO / "services" / service / "pyproject.toml")["dependencies"])
    for heavy in ("torch", "transformers", "aqlm"):
        assert heavy not in deps, f"{service} must not depend on {heavy}"


def test_shared_library_is_torch_free_and_provides_the_command() -> None:
    meta = project(REPO / "shared" / "pyproject.toml")
    assert meta["scripts"] == {"codequant": "codequant.cli:main"}
    assert not any("torch" in dep for dep in meta["dependencies"])


def test_cli_and_executor_import_without_torch() -> None:
    code = (
        "import sys; from codequant.cli import _load_plugins; import codequant_executor.cli, codequant_generator.cli;"
        " import codequant_reporter.cli; import codequant.celery_app; assert 'torch' not in sys.modules, 'torch'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_top_level_folders_exist() -> None:
    for name in ("services", "shared", "docker", "tests", "examples", "benchmarks", "docs", "Makefile", "README.md"):
        assert (REPO / name).exists(), name


def test_openmp_threads_sleep_only_on_a_busy_machine() -> None:
    assert openmp_wait_policy(load=13.0, cores=2) == "PASSIVE"
    assert openmp_wait_policy(load=1.5, cores=2) is None
    assert openmp_wait_policy(load=13.0, cores=16) is None


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_command_sets_the_policy_before_torch_loads_unless_told_otherwise(given: str | None, expected: str) -> None:
    # OpenMP reads the policy once, when torch loads it: the command must set it before anything imports torch.
    code = (
        "import os, sys; import codequant.cli as cli; sys.argv = ['codequant', '--help']\n"
        "cli.openmp_wait_policy = lambda load, cores: 'PASSIVE'  # as on a busy machine\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | (
        {"OMP_WAIT_POLICY": given} if given else {}
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{expected} False"
