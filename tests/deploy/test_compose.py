"""compose.yaml: valid against the Compose specification, and the deployment policy holds."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import typer
import typer.main
import yaml

from codequant.queues import QUEUES, REQUIRES

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


def image_distributions(dockerfile: str) -> set[str]:
    """The codequant distributions an image has from this repository (./shared, ./services/X...): those its
    Dockerfile pip-installs and those of the base image it starts from (docker/base.Dockerfile's)."""
    text = (REPO / dockerfile).read_text()
    installs = " ".join(line for line in text.replace("\\\n", " ").splitlines() if "pip install" in line)
    folders = re.findall(r"\./((?:shared|services/[a-z-]+|models/[a-z-]+))", installs)
    found = {tomllib.loads((REPO / f / "pyproject.toml").read_text())["project"]["name"] for f in folders}
    if re.search(r"^ARG BASE_IMAGE=codequant/base", text, re.MULTILINE):
        found |= image_distributions("docker/base.Dockerfile")
    return found


def subcommands() -> dict[str, set[str]]:
    """Distribution -> the `codequant` subcommands it adds (its ``codequant.cli`` entry point)."""
    provided = {}
    for entry in entry_points(group="codequant.cli"):
        app = typer.Typer()
        entry.load()(app)
        provided[entry.dist.name] = set(typer.main.get_group(app).commands)
    return provided


def routing_problems(compose: dict) -> list[str]:
    """Queues nobody consumes, and workers consuming a queue whose tasks their image cannot run."""
    problems = []
    consumers: dict[str, list[str]] = {queue: [] for queue in QUEUES}
    for name, service in compose["services"].items():
        args = service.get("command", [])
        if "entrypoint" in service or "build" not in service or args[:1] != ["worker"]:
            continue
        consumers.setdefault(args[1], []).append(name)
        missing = set(REQUIRES.get(args[1], ())) - image_distributions(service["build"]["dockerfile"])
        if missing:
            problems.append(f"{name} consumes {args[1]!r} but its image lacks {', '.join(sorted(missing))}")
    problems += [f"no worker consumes {queue!r}" for queue, names in consumers.items() if not names]
    return problems


def test_every_task_kind_reaches_a_worker_that_can_run_it() -> None:
    assert routing_problems(COMPOSE) == []


def test_the_routing_check_catches_a_worker_on_a_queue_it_cannot_serve() -> None:
    # The bug this check exists for: the generator image (no model server) consuming self-served generation.
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["generator"]["command"] = ["worker", "generate"]
    assert routing_problems(broken) == [
        "generator consumes 'generate' but its image lacks codequant-serving",
        "no worker consumes 'generate-remote'",
    ]


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


def test_every_command_is_installed_in_its_image() -> None:
    # `codequant worker` comes from the shared library, `codequant api` from the orchestrator: a worker image
    # without the distribution that adds its subcommand would fail at start ("No such command").
    provided = subcommands()
    for service, args in codequant_commands().items():
        image = image_distributions(SERVICES[service]["build"]["dockerfile"])
        available = set().union(*(provided.get(name, set()) for name in image))
        assert args[0] in available, f"{service}: `codequant {args[0]}` is not in its image ({sorted(image)})"


def test_every_dockerfile_exists_and_the_executor_image_has_no_torch() -> None:
    for service in SERVICES.values():
        if "build" in service:
            assert (REPO / service["build"]["dockerfile"]).is_file(), service["build"]["dockerfile"]
    executor = (REPO / SERVICES["executor"]["build"]["dockerfile"]).read_text()
    installs = " ".join(line for line in executor.splitlines() if "install" in line)
    assert "torch" not in installs and "services/serving" not in executor and "services/quantizer" not in executor
    # The quantizer builds builtin models with codequant-tiny-model; it needs no model server.
    assert "codequant-serving" not in image_distributions(SERVICES["quantizer"]["build"]["dockerfile"])


def test_every_codequant_container_has_an_init_to_reap_orphans() -> None:
    # Without one the worker is PID 1 and never reaps the sandbox's orphaned processes: their zombies filled the
    # executor's pids_limit after some hundred programs ("can't start new thread").
    ours = [name for name, s in SERVICES.items() if str(s.get("image", "")).startswith("codequant/")]
    assert ours and [name for name in ours if SERVICES[name].get("init") is not True] == []


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
