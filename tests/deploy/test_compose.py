"""compose.yaml: valid against the Compose specification, and the deployment policy holds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from codequant.queues import QUEUES

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # the spec declares draft-07 (without the trailing #)
    errors = sorted(validator.iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]


def codequant_commands() -> dict[str, list[str]]:
    """Service -> its `codequant` argument list, for services running our images (ENTRYPOINT codequant)."""
    out = {}
    for name, service in SERVICES.items():
        dockerfile = service.get("build", {}).get("dockerfile")
        if dockerfile and "entrypoint" not in service:
            out[name] = service["command"]
    return out


def test_every_queue_has_a_consumer() -> None:
    consumed = {args[1] for args in codequant_commands().values() if args[0] == "worker"}
    assert set(QUEUES) <= consumed, set(QUEUES) - consumed


@pytest.mark.parametrize("service", sorted(codequant_commands()))
def test_every_command_is_a_real_cli_entry_point(service: str) -> None:
    args = codequant_commands()[service]
    result = subprocess.run(
        [sys.executable, "-c", "from codequant.cli import main; main()", args[0], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    options = set(re.findall(r"--[a-z][a-z-]*", result.stdout))
    assert {a for a in args if a.startswith("--")} <= options


def test_every_dockerfile_exists_and_the_executor_image_has_no_torch() -> None:
    for service in SERVICES.values():
        if "build" in service:
            assert (REPO / service["build"]["dockerfile"]).is_file(), service["build"]["dockerfile"]
    executor = (REPO / SERVICES["executor"]["build"]["dockerfile"]).read_text()
    installs = " ".join(line for line in executor.splitlines() if "install" in line)
    assert "torch" not in installs and "services/serving" not in executor and "services/quantizer" not in executor


def test_scaled_services_have_no_container_name() -> None:
    assert [name for name, s in SERVICES.items() if "container_name" in s] == []


def test_the_executor_is_hardened_and_isolated() -> None:
    executor = SERVICES["executor"]
    assert executor["read_only"] is True and executor["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in executor["security_opt"]
    assert executor["pids_limit"] > 0 and executor["mem_limit"] and executor["tmpfs"]
    assert not str(executor["user"]).startswith("0")
    postgres_networks = set(SERVICES["postgres"]["networks"])
    assert not set(executor["networks"]) & postgres_networks
    assert all(COMPOSE["networks"][n].get("internal") for n in executor["networks"])
    assert "CODEQUANT_STORE_URL" not in executor.get("environment", {})
    assert set(executor["networks"]) <= set(SERVICES["redis"]["networks"])


def test_gpu_services_reserve_a_gpu_and_everything_has_healthy_dependencies() -> None:
    for name in ("quantizer", "serving"):
        devices = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    for name in ("redis", "postgres", "orchestrator"):
        assert "healthcheck" in SERVICES[name]
    assert set(COMPOSE["volumes"]) >= {"artifacts", "database"}
