"""deploy/compose.yaml against the Compose specification's JSON schema (the copy check-jsonschema
ships), then against the services: build files, required settings, hosts and ports, health-
ordered start, what is published, the object store and its one identity, and the secrets
.env.example must name."""

from __future__ import annotations

import importlib.resources
import json
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.services import (
    BY_NAME,
    DEPLOY,
    GATEWAY_ADDRESSES,
    INIT_SCRIPT,
    SERVICES,
    STORE,
    Service,
    each_service,
    image_env,
    load_settings,
    parse_database_url,
    required_variables,
    runtime_value,
    split_address,
    weed_flags,
)

COMPOSE = DEPLOY / "compose.yaml"
INFRA_PORTS = DEPLOY / "compose.infra-ports.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}`` over a loaded file; a
    required variable missing from ``env`` fails the test, as it fails ``docker compose``."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator and operator.endswith("?"):
            pytest.fail(f"{name} is required by compose.yaml ({argument}) and not set")
        return argument or ""

    return VARIABLE.sub(substitute, value)


def variables_used(path: Path) -> dict[str, bool]:
    """Each ``${VAR}`` of a compose file: true when it has no default (``:?`` or bare)."""
    used: dict[str, bool] = {}
    for name, operator, _ in VARIABLE.findall(path.read_text()):
        used[name] = used.get(name, False) or not operator.endswith("-")
    return used


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """compose.yaml as ``docker compose config`` sees it with the example .env, each value
    replaced as its comment asks (the services refuse the placeholders themselves)."""
    filled = {name: secrets.token_hex(24) for name in env_file(ENV_EXAMPLE)}
    return interpolate(yaml.safe_load(COMPOSE.read_text()), filled)


def environment(compose: dict[str, Any], name: str) -> dict[str, str]:
    """A container's environment: its image's ENV, then the compose file's."""
    service = compose["services"][name]
    env = image_env(BY_NAME[name].dockerfile) if name in BY_NAME else {}
    env.update({key: str(value) for key, value in service.get("environment", {}).items()})
    return env


def service_settings(compose: dict[str, Any], service: Service, monkeypatch: Any) -> Any:
    return load_settings(service, environment(compose, service.name), monkeypatch)


@pytest.mark.parametrize("path", [COMPOSE, INFRA_PORTS], ids=lambda p: p.name)
def test_compose_file_is_valid_against_the_compose_specification(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    validator = jsonschema.validators.validator_for(compose_schema())(compose_schema())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_every_variable_without_a_default_is_in_env_example() -> None:
    required = {name for name, needed in variables_used(COMPOSE).items() if needed}
    assert required <= set(env_file(ENV_EXAMPLE))


@each_service()
def test_service_builds_from_its_own_dockerfile_at_the_workspace_root(
    compose: dict[str, Any], service: Service
) -> None:
    build = compose["services"][service.name]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context / build["dockerfile"] == service.dockerfile
    assert (context / "pyproject.toml").exists()


@each_service()
def test_service_gets_every_setting_it_requires(
    compose: dict[str, Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert required_variables(service) <= set(environment(compose, service.name))
    service_settings(compose, service, monkeypatch)  # validates too: JWT key lengths...


@each_service()
def test_service_database_url_names_its_own_role_on_the_compose_postgres(
    compose: dict[str, Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, service, monkeypatch)
    url = parse_database_url(settings.database_url.get_secret_value())
    postgres = compose["services"]["postgres"]["environment"]
    assert (url.host, url.port) == ("postgres", 5432)
    assert url.user == url.database == service.database
    assert url.password == postgres[service.password_var]
    assert f"create {service.database} {service.password_var}\n" in INIT_SCRIPT.read_text()


@pytest.mark.parametrize("service", [s for s in SERVICES if s.uses_kafka], ids=lambda s: s.name)
def test_service_kafka_bootstrap_is_the_advertised_internal_listener(
    compose: dict[str, Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, service, monkeypatch)
    kafka = compose["services"]["kafka"]["environment"]
    advertised = dict(
        listener.split("://") for listener in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert settings.kafka_bootstrap == advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert "kafka" in compose["services"][service.name]["depends_on"]


@pytest.mark.parametrize("callee", list(GATEWAY_ADDRESSES))
def test_gateway_reaches_each_service_at_its_compose_name_and_port(
    compose: dict[str, Any], callee: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = service_settings(compose, BY_NAME["api-gateway"], monkeypatch)
    callee_port = service_settings(compose, BY_NAME[callee], monkeypatch).port
    address = getattr(gateway, GATEWAY_ADDRESSES[callee])
    assert split_address(address) == (callee, callee_port)


def test_only_the_gateway_and_the_object_store_publish_a_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    published = {name for name, spec in compose["services"].items() if spec.get("ports")}
    assert published == {"api-gateway", STORE}  # browsers use the store's URLs directly
    (mapping,) = compose["services"]["api-gateway"]["ports"]
    gateway = service_settings(compose, BY_NAME["api-gateway"], monkeypatch)
    assert mapping.rsplit(":", 1)[1] == str(gateway.port)
    (mapping,) = compose["services"][STORE]["ports"]
    assert mapping.rsplit(":", 1)[1] == store_flags(compose)["s3.port"]


def store_flags(compose: dict[str, Any]) -> dict[str, str]:
    return weed_flags(compose["services"][STORE]["command"])


def test_the_object_store_runs_every_part_with_s3_on_its_port(compose: dict[str, Any]) -> None:
    command = compose["services"][STORE]["command"]
    flags = store_flags(compose)
    assert command[0] == "server"
    assert flags["filer"] == flags["s3"] == "true"
    assert flags["master.telemetry"] == "false"
    assert flags["ip"] == "127.0.0.1"  # its parts reach each other in the one container
    assert flags["ip.bind"] == "0.0.0.0"  # the network, the published port, the health check
    test = compose["services"][STORE]["healthcheck"]["test"]
    assert f"http://127.0.0.1:{flags['s3.port']}/healthz" in test


def test_video_reaches_the_object_store_at_its_compose_name_and_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, BY_NAME["video"], monkeypatch)
    assert settings.s3_endpoint == f"http://{STORE}:{store_flags(compose)['s3.port']}"
    assert settings.s3_path_style is True  # SeaweedFS answers no bucket.host names


def test_video_hands_out_urls_to_the_published_store_port(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, BY_NAME["video"], monkeypatch)
    public = urllib.parse.urlsplit(settings.s3_public_endpoint)
    (mapping,) = compose["services"][STORE]["ports"]
    assert (public.hostname, public.port) == ("localhost", int(mapping.split(":")[-2]))
    gateway_port = compose["services"]["api-gateway"]["ports"][0].split(":")[-2]
    assert f"http://localhost:{gateway_port}" in settings.s3_cors_origins


def test_video_keys_are_the_object_stores_only_identity(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, BY_NAME["video"], monkeypatch)
    config = compose["configs"]["s3-identities"]
    (mount,) = compose["services"][STORE]["configs"]
    assert mount == {"source": "s3-identities", "target": store_flags(compose)["s3.config"]}
    (identity,) = json.loads(config["content"])["identities"]  # no "anonymous" one
    (credential,) = identity["credentials"]
    assert credential["accessKey"] == settings.s3_access_key_id.get_secret_value()
    assert credential["secretKey"] == settings.s3_secret_access_key.get_secret_value()
    assert "Admin" in identity["actions"]  # migrate makes the bucket and sets its rules


def test_every_service_waits_for_what_it_needs_to_be_healthy(compose: dict[str, Any]) -> None:
    for name, spec in compose["services"].items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, (name, dependency)
            has_check = "healthcheck" in compose["services"][dependency] or (
                dependency in BY_NAME
                and runtime_value(BY_NAME[dependency].dockerfile, "HEALTHCHECK")
            )
            assert has_check, f"{name} waits on {dependency}, which has no health check"
    for service in SERVICES:
        needs = {"postgres"} | ({"kafka"} if service.uses_kafka else set())
        needs |= {STORE} if service.reaches_store else set()
        assert needs <= set(compose["services"][service.name]["depends_on"])
    assert set(GATEWAY_ADDRESSES) <= set(compose["services"]["api-gateway"]["depends_on"])


def test_postgres_kafka_and_the_store_keep_their_data_in_named_volumes(
    compose: dict[str, Any],
) -> None:
    mounts = {
        name: {v.split(":")[0]: v.split(":")[1] for v in compose["services"][name]["volumes"]}
        for name in ("postgres", "kafka", STORE)
    }
    assert mounts["postgres"]["postgres-data"] == "/var/lib/postgresql"  # 18+: not .../data
    assert (
        mounts["kafka"]["kafka-data"]
        == compose["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"]
    )
    assert mounts[STORE]["objectstore-data"] == "/data"  # the image's data folder
    assert set(compose["volumes"]) == {"postgres-data", "kafka-data", "objectstore-data"}
    init = mounts["postgres"]["./postgres/init-databases.sh"]
    assert init.startswith("/docker-entrypoint-initdb.d/")
    assert (DEPLOY / "postgres" / "init-databases.sh").exists()


def test_every_container_is_on_the_one_network(compose: dict[str, Any]) -> None:
    assert set(compose["networks"]) == {"vidmesh"}
    for spec in compose["services"].values():
        assert spec["networks"] == ["vidmesh"]


def test_infra_ports_publish_postgres_and_kafka_on_loopback_only() -> None:
    override = yaml.safe_load(INFRA_PORTS.read_text())["services"]
    kafka = yaml.safe_load(COMPOSE.read_text())["services"]["kafka"]["environment"]
    assert set(override) == {"postgres", "kafka"}
    for spec in override.values():
        for mapping in spec["ports"]:
            assert mapping.startswith("127.0.0.1:")
    # programs on the host reach the broker through the listener it advertises to them
    assert "HOST://localhost:9094" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    assert "127.0.0.1:9094:9094" in override["kafka"]["ports"]


def test_gateway_shares_its_rate_limits_through_the_valkey_with_its_password(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = BY_NAME["api-gateway"]
    settings = service_settings(compose, gateway, monkeypatch)
    url = urllib.parse.urlsplit(settings.rate_limit_storage.get_secret_value())
    valkey = compose["services"]["valkey"]
    command = valkey["command"]
    assert (url.scheme, url.hostname, url.port) == ("redis", "valkey", 6379)
    assert url.password == command[command.index("--requirepass") + 1]
    assert "valkey" in compose["services"]["api-gateway"]["depends_on"]


@each_service()
def test_service_talks_mutual_tls_with_its_own_certificate(
    compose: dict[str, Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = service_settings(compose, service, monkeypatch)
    assert settings.tls_enabled
    assert (settings.tls_cert, settings.tls_key, settings.tls_ca) == (
        Path("/tls/tls.crt"),
        Path("/tls/tls.key"),
        Path("/tls/ca.crt"),
    )
    # The folder `vidmesh certs deploy/certs` makes for this service, and only it, read-only.
    assert compose["services"][service.name]["volumes"] == [f"./certs/{service.name}:/tls:ro"]


@each_service()
def test_tcp_services_admit_only_the_gateway(
    compose: dict[str, Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert service_settings(compose, service, monkeypatch).allowed_callers == ["api-gateway"]
