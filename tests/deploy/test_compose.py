"""compose.yaml: valid against the Compose specification, and the deployment policy holds."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import typer
import typer.main
import yaml

from codequant.queues import QUEUES, REQUIRES
from tests.cli import codequant

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"


class Reset:
    """Compose's ``!reset`` tag: the override removes the attribute."""


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it (``!reset`` included)."""


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def load(name: str) -> dict:
    return yaml.load((REPO / name).read_text(), Loader=ComposeLoader)


def merged(base: dict, override: dict) -> dict:
    """``docker compose -f base -f override``'s merge as far as these files use it: mappings merge, ``!reset``
    removes, anything else is replaced (volumes and ports are not overridden here, only added)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Reset):
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list) and key in ("volumes", "ports"):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


COMPOSE = load("compose.yaml")
SERVICES = COMPOSE["services"]
OVERRIDES = ("compose.cpu.yaml", "compose.offline.yaml")


def without_resets(node: object) -> object:
    if isinstance(node, dict):
        return {k: without_resets(v) for k, v in node.items() if not isinstance(v, Reset)}
    return node


@pytest.mark.parametrize("name", ["compose.yaml", *OVERRIDES])
def test_compose_files_match_the_compose_specification(name: str) -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # the spec declares draft-07 (without the trailing #)
    documents = [without_resets(load(name))] + ([merged(COMPOSE, load(name))] if name in OVERRIDES else [])
    for document in documents:
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
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
    result = codequant(args[0], "--help", timeout=120)
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


def test_the_images_that_validate_studies_know_the_generation_protocols() -> None:
    # A study's endpoint.api is checked against the protocols a `codequant.protocols` entry point brings
    # (codequant_generator.clients): an image that loads studies without one would refuse every endpoint.
    protocols = {entry.dist.name for entry in entry_points(group="codequant.protocols")}
    assert protocols == {"codequant-generator"}
    for service in ("orchestrator", "generator"):
        image = image_distributions(SERVICES[service]["build"]["dockerfile"])
        assert protocols <= image, f"{service}: no generation protocols in its image ({sorted(image)})"


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


def test_the_cpu_override_runs_the_same_stack_without_gpus() -> None:
    cpu = merged(COMPOSE, load("compose.cpu.yaml"))["services"]
    assert set(cpu) == set(SERVICES)
    # Nothing reserves a GPU but the optional TGI (`--profile tgi`, a GPU image), which a CPU host does not start.
    assert [name for name, service in cpu.items() if "deploy" in service] == ["tgi"] == SERVICES["tgi"]["profiles"]
    assert cpu["orchestrator"]["command"][-2:] == ["--device", "cpu"]
    for name in ("quantizer", "serving"):  # no CUDA-only installs in CPU images
        assert cpu[name]["build"]["args"]["CUDA_EXTRAS"] == "" and "PIP_OFFLINE" in cpu[name]["build"]["args"]
    assert cpu["serving"]["build"]["args"]["VLLM"] == ""


def test_the_offline_override_builds_redis_and_postgres_and_mounts_the_data_where_benchmarks_load() -> None:
    offline = merged(merged(COMPOSE, load("compose.cpu.yaml")), load("compose.offline.yaml"))["services"]
    for name in ("redis", "postgres"):
        assert offline[name]["image"] == f"codequant/{name}"
        assert (REPO / offline[name]["build"]["dockerfile"]).is_file()
    loaders = {"orchestrator", "quantizer", "serving", "generator", "reporter"}
    for name, service in offline.items():
        mounted = any(str(v).endswith(":/data/datasets:ro") for v in service.get("volumes", []))
        assert mounted == (name in loaders), name
        if mounted:
            assert service["environment"]["CODEQUANT_DATA_DIR"] == "/data/datasets"
            assert "CODEQUANT_STORE_URL" in service["environment"]  # merged into, not replacing, the base's


def dockerfiles() -> list[Path]:
    return sorted((REPO / "docker").glob("*.Dockerfile"))


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_every_dockerfile_takes_its_base_from_a_build_argument(path: Path) -> None:
    text = path.read_text()
    first_from = re.search(r"^FROM (\S+)", text, re.MULTILINE)
    assert first_from and re.fullmatch(r"\$\{[A-Z_]+\}", first_from.group(1)), first_from
    argument = first_from.group(1)[2:-1]
    default = re.search(rf"^ARG {argument}=(\S+)$", text, re.MULTILINE)
    assert default, f"ARG {argument} has no default"
    # A user on the internet gets an official image or one `make images` builds first.
    assert default.group(1).startswith(("python:", "debian:", "codequant/base")), default.group(1)


def test_the_base_images_requirements_are_the_distributions_own() -> None:
    # docker/requirements/ installs ahead of the code what the distributions need; it must not drift from them.
    def names(requirements: list[str]) -> set[str]:
        return {re.split(r"[<>=\[; ]", r.strip(), maxsplit=1)[0].lower() for r in requirements if r.strip()}

    def listed(name: str) -> set[str]:
        lines = (REPO / "docker" / "requirements" / name).read_text().splitlines()
        return names([line for line in lines if not line.startswith("#")])

    def declared(folder: str) -> set[str]:
        project = tomllib.loads((REPO / folder / "pyproject.toml").read_text())["project"]
        return {n for n in names(project["dependencies"]) if not n.startswith("codequant")}

    assert listed("base.txt") == declared("shared")
    shared_by_torch_services = declared("services/quantizer") & declared("services/serving") - {"torch"}
    assert (
        shared_by_torch_services
        <= listed("torch.txt")
        <= declared("services/quantizer") | declared("services/serving") | declared("models/tiny")
    )
    assert "torch" not in listed("base.txt") | listed("torch.txt")  # torch comes from TORCH or the CUDA base


def test_the_build_context_leaves_out_what_images_never_need_and_no_ca_is_committed() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "runs", ".env"} <= ignored
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert not [f for f in tracked.split() if f.endswith((".crt", ".pem", ".whl"))]
    assert "docker/wheelhouse/README.md" in tracked.split()


def test_gpu_services_reserve_a_gpu_and_everything_has_healthy_dependencies() -> None:
    for name in ("quantizer", "serving"):
        devices = SERVICES[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    for name in ("redis", "postgres", "orchestrator"):
        assert "healthcheck" in SERVICES[name]
    assert set(COMPOSE["volumes"]) >= {"artifacts", "database"}
