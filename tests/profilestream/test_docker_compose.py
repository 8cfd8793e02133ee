"""The production topology (docker-compose.yml, Dockerfile, .dockerignore) checked against the
code without a Docker engine: each app service's environment, interpolated the way Compose does,
must build a valid `infra.settings.Settings` whose addresses point at the compose services."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from infra.settings import DEV_ADMIN_TOKEN, DEV_WRITE_KEY, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

BACKENDS = ("kafka", "redis", "clickhouse")
APPS = ("ingest", "materializer", "query")
# The backends each service talks to (what it must wait for).
USES = {
    "ingest": {"kafka"},
    "materializer": {"kafka", "redis", "clickhouse"},
    "query": {"redis", "clickhouse"},
}

# The shell/.env values an operator would provide; CLICKHOUSE_USER is left to its default.
OPERATOR_ENV = {
    "PS_WRITE_KEYS": "wk-test-web:web,wk-test-ios:ios",
    "PS_ADMIN_TOKEN": "admin-token-for-tests",
    "CLICKHOUSE_PASSWORD": "clickhouse-test-password",
}
REQUIRED_SECRETS = {"PS_WRITE_KEYS", "PS_ADMIN_TOKEN", "CLICKHOUSE_PASSWORD"}


# --- Compose interpolation -------------------------------------------------------------------


class MissingVariable(Exception):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
    ${VAR?e}, ${VAR:+r}, ${VAR+r}."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        is_set = name in env
        non_empty = bool(env.get(name))
        if op == ":-":
            return env[name] if non_empty else arg
        if op == "-":
            return env[name] if is_set else arg
        if op == ":?":
            if not non_empty:
                raise MissingVariable(name, arg)
            return env[name]
        if op == "?":
            if not is_set:
                raise MissingVariable(name, arg)
            return env[name]
        if op == ":+":
            return arg if non_empty else ""
        if op == "+":
            return arg if is_set else ""
        return env.get(name, "")

    return _INTERPOLATION.sub(substitute, text)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


def missing_required(node: Any, env: Mapping[str, str]) -> Iterator[str]:
    """Every variable whose absence makes interpolation fail."""
    if isinstance(node, str):
        for match in _INTERPOLATION.finditer(node):
            name = match["braced"]
            if name and match["op"] in (":?", "?"):
                try:
                    interpolate(match[0], env)
                except MissingVariable:
                    yield name
    elif isinstance(node, dict):
        for value in node.values():
            yield from missing_required(value, env)
    elif isinstance(node, list):
        for item in node:
            yield from missing_required(item, env)


# --- Loading ---------------------------------------------------------------------------------


def load_raw() -> dict[str, Any]:
    # safe_load resolves anchors, aliases and `<<` merge keys.
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load_raw()


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate_tree(raw, OPERATOR_ENV)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def environment_of(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    else:
        pairs = dict(env)
    # Compose passes scalars as strings; booleans must be quoted to survive as "true"/"false".
    for key, value in pairs.items():
        assert not isinstance(value, bool), f"{key}: quote boolean values in environment"
    return {str(key): "" if value is None else str(value) for key, value in pairs.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def published_ports(service: Mapping[str, Any]) -> list[tuple[str, int | None, int]]:
    """(host ip, host port, container port) for each `ports` entry."""
    result: list[tuple[str, int | None, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            result.append(
                (
                    str(entry.get("host_ip", "")),
                    int(published) if published is not None else None,
                    int(entry["target"]),
                )
            )
            continue
        spec = str(entry).split("/", 1)[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            host_ip, host, container = parts
        elif len(parts) == 2:
            host_ip, (host, container) = "", parts
        else:
            host_ip, host, container = "", "", parts[0]
        result.append((host_ip, int(host) if host else None, int(container)))
    return result


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings built from exactly `env`: no PS_ variable of the test process leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("PS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


# --- The file and its services ---------------------------------------------------------------


def test_compose_parses_with_all_services(services: dict[str, dict[str, Any]]) -> None:
    missing = {*BACKENDS, *APPS} - services.keys()
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_secrets_are_required_and_not_committed(raw: dict[str, Any]) -> None:
    required = set(missing_required(raw, {}))
    assert required >= REQUIRED_SECRETS, (
        f"these must be required `${{VAR:?...}}` variables: {sorted(REQUIRED_SECRETS - required)}"
    )
    # Empty counts as missing too (`:?`, not `?`).
    empty = {name: "" for name in REQUIRED_SECRETS}
    assert set(missing_required(raw, empty)) >= REQUIRED_SECRETS
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    for dev_secret in (DEV_WRITE_KEY, DEV_ADMIN_TOKEN):
        assert dev_secret not in text


def test_interpolation_fails_without_secrets(raw: dict[str, Any]) -> None:
    with pytest.raises(MissingVariable):
        interpolate_tree(raw, {})


# --- Each app service's environment against Settings -----------------------------------------


@pytest.mark.parametrize("name", APPS)
def test_environment_builds_production_settings(
    name: str, services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment_of(services[name])
    unknown = {
        key
        for key in env
        if key.startswith("PS_") and key.removeprefix("PS_").lower() not in Settings.model_fields
    }
    assert not unknown, f"{name}: PS_ variables Settings does not read (typos?): {sorted(unknown)}"

    # Raises (e.g. the dev-credentials error) if the environment is not acceptable.
    settings = settings_from(env, monkeypatch)

    assert settings.mode == "production"
    assert settings.write_key_map() == {"wk-test-web": "web", "wk-test-ios": "ios"}
    assert settings.admin_token.get_secret_value() == OPERATOR_ENV["PS_ADMIN_TOKEN"]
    assert settings.serve_query_in_materializer is False


@pytest.mark.parametrize("name", APPS)
def test_kafka_address_is_the_kafka_service_listener(
    name: str, services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(environment_of(services[name]), monkeypatch)
    for address in settings.kafka_bootstrap.split(","):
        host, port = host_port(address.strip())
        assert host in services, f"{name}: Kafka host {host!r} is not a compose service"
        broker = environment_of(services[host])
        protocols = dict(
            item.split(":", 1) for item in broker["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        )
        advertised = {
            urlsplit(item.strip()).netloc: item.split("://", 1)[0]
            for item in broker["KAFKA_ADVERTISED_LISTENERS"].split(",")
        }
        assert f"{host}:{port}" in advertised, (
            f"{name}: {host}:{port} is not among the advertised listeners {sorted(advertised)}"
        )
        listener = advertised[f"{host}:{port}"]
        # The clients speak plaintext (no SASL/SSL settings exist).
        assert protocols[listener] == "PLAINTEXT"
        bound = {
            item.split("://", 1)[0]: host_port(item.split("://", 1)[1])[1]
            for item in broker["KAFKA_LISTENERS"].split(",")
        }
        assert bound.get(listener) == port, f"{host} does not listen on {port} for {listener}"


@pytest.mark.parametrize("name", APPS)
def test_redis_and_clickhouse_addresses_are_the_services(
    name: str, services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(environment_of(services[name]), monkeypatch)

    redis = urlsplit(settings.redis_url)
    assert redis.scheme == "redis"
    assert (redis.hostname, redis.port) == ("redis", 6379)

    dsn = settings.clickhouse_dsn
    assert not dsn.startswith("chdb://"), f"{name}: production must not use chDB"
    clickhouse = urlsplit(dsn)
    assert clickhouse.scheme == "http"
    assert (clickhouse.hostname, clickhouse.port) == ("clickhouse", 8123)
    # The credentials in the DSN are the ones the ClickHouse container creates.
    server = environment_of(services["clickhouse"])
    assert clickhouse.username == server["CLICKHOUSE_USER"]
    assert (
        clickhouse.password == server["CLICKHOUSE_PASSWORD"] == OPERATOR_ENV["CLICKHOUSE_PASSWORD"]
    )
    assert clickhouse.path.strip("/") == server.get("CLICKHOUSE_DB", "default")


# --- Ports -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "host_port_expected", "host_field", "port_field"),
    [
        ("ingest", 8000, "ingest_host", "ingest_port"),
        ("query", 8001, "query_host", "query_port"),
    ],
)
def test_http_services_publish_their_port(
    name: str,
    host_port_expected: int,
    host_field: str,
    port_field: str,
    services: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(environment_of(services[name]), monkeypatch)
    # Inside the container the server must bind every interface to be reachable at all.
    assert getattr(settings, host_field) == "0.0.0.0"
    container_port = getattr(settings, port_field)
    assert (host_port_expected, container_port) in {
        (host, container) for _, host, container in published_ports(services[name])
    }, f"{name}: expected {host_port_expected}:{container_port} in {services[name].get('ports')}"


def test_backends_are_not_published(services: dict[str, dict[str, Any]]) -> None:
    for name in BACKENDS:
        assert not services[name].get("ports"), f"{name} should stay on the compose network"


# --- Materializer replicas -------------------------------------------------------------------


def test_materializer_replicas_share_one_consumer_group(
    raw: dict[str, Any], services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = services["materializer"]
    replicas = (service.get("deploy") or {}).get("replicas", service.get("scale", 1))
    assert int(replicas) >= 2
    assert "container_name" not in service, "a fixed container_name prevents replicas"
    assert not service.get("ports"), "replicas cannot all publish the same host port"

    env = environment_of(service)
    assert env.get("PS_APP_ID"), "PS_APP_ID (the consumer group id) must be set explicitly"
    # Same literal for every replica: nothing per-container (hostname, replica slot) in it.
    raw_app_id = str(environment_of(raw["services"]["materializer"])["PS_APP_ID"])
    assert "$" not in raw_app_id and "{{" not in raw_app_id

    settings = settings_from(env, monkeypatch)
    assert settings.app_id == env["PS_APP_ID"]
    # More replicas than partitions would leave consumers idle.
    assert settings.topic_partitions >= int(replicas)


def test_auto_created_topics_get_the_configured_partitions(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ingest may publish to ps.events before the materializer creates it.
    settings = settings_from(environment_of(services["ingest"]), monkeypatch)
    broker = environment_of(services["kafka"])
    if broker.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true").lower() == "true":
        assert int(broker.get("KAFKA_NUM_PARTITIONS", "1")) == settings.topic_partitions


# --- Image and commands ----------------------------------------------------------------------


def test_project_image_services_run_their_package(services: dict[str, dict[str, Any]]) -> None:
    built = {name for name, service in services.items() if "build" in service}
    assert built == set(APPS)
    images = {services[name].get("image") for name in APPS}
    assert len(images) == 1, f"the app services should share one image, got {images}"
    for name in APPS:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context).resolve() == ROOT
        assert (ROOT / context / dockerfile).is_file()

        assert command_of(services[name]) == ["python", "-m", name]
        assert (ROOT / name / "__main__.py").is_file(), f"{name}/__main__.py is missing"


def test_backend_images(services: dict[str, dict[str, Any]]) -> None:
    assert re.fullmatch(r"apache/kafka(-native)?:3\.9(\.\d+)?", services["kafka"]["image"])
    assert "KAFKA_PROCESS_ROLES" in environment_of(services["kafka"]), "KRaft mode"
    assert re.fullmatch(r"redis:7(\.\d+)*(-\w+)?", services["redis"]["image"])
    assert re.fullmatch(
        r"clickhouse/clickhouse-server:2[45](\.\d+)*(-\w+)?", services["clickhouse"]["image"]
    )
    command = command_of(services["redis"])
    assert "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "yes"
    for name in BACKENDS:
        assert services[name].get("volumes"), f"{name} keeps its data in a volume"


# --- Start-up order --------------------------------------------------------------------------


@pytest.mark.parametrize("name", APPS)
def test_apps_wait_for_healthy_backends(name: str, services: dict[str, dict[str, Any]]) -> None:
    depends_on = services[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), f"{name}: use the long depends_on form with conditions"
    for backend in USES[name]:
        assert backend in depends_on, f"{name} must depend on {backend}"
        assert depends_on[backend].get("condition") == "service_healthy"
        healthcheck = services[backend].get("healthcheck") or {}
        test = healthcheck.get("test")
        assert test and not healthcheck.get("disable"), f"{backend} needs a healthcheck"
        assert (test if isinstance(test, str) else test[0]) != "NONE"


# --- Dockerfile ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_production_image() -> None:
    instructions = dockerfile_instructions()
    bases = [rest.split()[0] for keyword, rest in instructions if keyword == "FROM"]
    assert bases and bases[-1] == "python:3.11-slim"

    pip_runs = [rest for keyword, rest in instructions if keyword == "RUN" and "pip " in rest]
    assert pip_runs, "the project must be pip-installed"
    assert any(re.search(r"pip (install|wheel)\b.*\s\.(\s|$)", run) for run in pip_runs)
    assert not any("embedded" in run for run in pip_runs), "no `embedded` extra in production"

    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "run as a non-root user"

    cmds = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert cmds and cmds[-1] == '["python", "-m", "ingest"]'


def test_dockerignore_excludes_local_state() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git", ".pytest_cache"} <= patterns
    for needed in ("pyproject.toml", *APPS, "infra", "schemas"):
        assert needed not in patterns, f"{needed} is needed by the image build"


# --- Health checks and monitoring ------------------------------------------------------------

PROMETHEUS_CONFIG = ROOT / "prometheus.yml"
# the port each app serves /readyz and /metrics on, as its settings say
OPS_PORT_FIELDS = {
    "ingest": ("ingest_host", "ingest_port"),
    "query": ("query_host", "query_port"),
    "materializer": ("worker_metrics_host", "worker_metrics_port"),
}


@pytest.mark.parametrize("name", APPS)
def test_healthchecks_ask_readyz_on_the_services_port(
    name: str, services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(environment_of(services[name]), monkeypatch)
    host_field, port_field = OPS_PORT_FIELDS[name]
    # reachable from Prometheus on the compose network, and from the healthcheck inside
    assert getattr(settings, host_field) == "0.0.0.0"
    healthcheck = services[name].get("healthcheck") or {}
    test = healthcheck.get("test")
    assert isinstance(test, list) and test[:3] == ["CMD", "python", "-c"], test
    # urlopen raises on a 503, so the one-liner exits non-zero when the service is not ready
    assert re.fullmatch(
        r"import urllib\.request; urllib\.request\.urlopen\("
        rf"'http://127\.0\.0\.1:{getattr(settings, port_field)}/readyz', timeout=\d+\)",
        test[3],
    ), test[3]
    timeout = int(re.search(r"timeout=(\d+)", test[3]).group(1))  # type: ignore[union-attr]
    assert timeout < int(str(healthcheck["timeout"]).rstrip("s"))


def test_prometheus_scrapes_each_service_on_its_compose_port(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in ("ingest", "query"):
        port = getattr(
            settings_from(environment_of(services[name]), monkeypatch), OPS_PORT_FIELDS[name][1]
        )
        assert jobs[name]["static_configs"] == [{"targets": [f"{name}:{port}"]}]
    worker = settings_from(environment_of(services["materializer"]), monkeypatch)
    [discovery] = jobs["materializer"]["dns_sd_configs"]
    # an A query of the service name returns every replica
    assert (discovery["names"], discovery["type"]) == (["materializer"], "A")
    assert discovery["port"] == worker.worker_metrics_port


def test_monitoring_profile_runs_prometheus_and_a_provisioned_grafana(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus, grafana = services["prometheus"], services["grafana"]
    # not started by a plain `docker compose up`
    assert prometheus["profiles"] == grafana["profiles"] == ["monitoring"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    mounts = {
        target: ROOT / source
        for source, target, *_ in (volume.split(":") for volume in grafana["volumes"])
        if source.startswith("./")
    }
    for source in mounts.values():
        assert source.is_file(), f"{source} is mounted into grafana but missing"
    assert mounts["/var/lib/grafana/dashboards/profilestream.json"] == (
        ROOT / "docs" / "grafana-dashboard.json"
    )
    provisioned = {
        target.split("/")[-2]: yaml.safe_load(source.read_text(encoding="utf-8"))
        for target, source in mounts.items()
        if target.startswith("/etc/grafana/provisioning/")
    }
    [datasource] = provisioned["datasources"]["datasources"]
    assert (datasource["type"], datasource["url"]) == ("prometheus", "http://prometheus:9090")
    [provider] = provisioned["dashboards"]["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    # only on this machine's loopback: Grafana's first password is the default one
    assert [entry.split(":")[0] for entry in grafana.get("ports", [])] == ["127.0.0.1"]
    assert not prometheus.get("ports")
