"""deploy/k8s: both overlays rendered by kustomize (the one built into the kubectl wheel), every
object valid against the Kubernetes schemas (kubernetes-validate, strict), and the objects
consistent with each other and with the services' settings and images."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.services import (
    BY_NAME,
    DEPLOY,
    GATEWAY_ADDRESSES,
    SERVICES,
    STORE,
    Service,
    each_service,
    image_env,
    load_settings,
    parse_database_url,
    split_address,
    weed_flags,
)

K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")
OLDEST_KUBERNETES = "1.30"
"""The oldest release the manifests are for (preStop ``sleep`` is on by default from 1.30)."""
VENV_BIN = Path(sys.executable).parent
CERT_MANAGER = "cert-manager.io/v1"
"""Custom resources (the cert-manager component): not in the Kubernetes schemas."""


def render(overlay: str) -> list[dict[str, Any]]:
    """``kustomize build deploy/k8s/overlays/<overlay>``."""
    result = subprocess.run(
        [str(VENV_BIN / "kubectl"), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> dict[tuple[str, str], dict[str, Any]]:
    """One overlay's objects by ``(kind, name)``."""
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in render(request.param)}


@pytest.fixture(scope="module")
def dev() -> dict[tuple[str, str], dict[str, Any]]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in render("dev")}


def manifest_files() -> list[Path]:
    return sorted(
        p
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "cert-manager" not in p.parts
    )


def deployment(objects: dict[tuple[str, str], Any], service: Service) -> dict[str, Any]:
    return objects["Deployment", service.name]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def main_container(objects: dict[tuple[str, str], Any], service: Service) -> dict[str, Any]:
    (container,) = pod_spec(deployment(objects, service))["containers"]
    return container


def by_name(objects: dict[tuple[str, str], Any], kind: str, name: str) -> dict[str, Any]:
    """An object by its name before kustomize's hash suffix (``user-secrets-7f9k...``)."""
    found = [
        o for (k, n), o in objects.items() if k == kind and (n == name or n.startswith(f"{name}-"))
    ]
    assert len(found) == 1, (kind, name, [o["metadata"]["name"] for o in found])
    return found[0]


def container_env(objects: dict[tuple[str, str], Any], container: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: image ENV, then envFrom, then env (literal values)."""
    image = container["image"].rsplit("/", 1)[-1].split(":")[0]
    env = image_env(BY_NAME[image].dockerfile) if image in BY_NAME else {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(objects["ConfigMap", source["configMapRef"]["name"]]["data"])
        elif ("Secret", source["secretRef"]["name"]) in objects:
            secret = objects["Secret", source["secretRef"]["name"]]
            env.update(_decoded(secret))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif ("Secret", (ref := item["valueFrom"]["secretKeyRef"])["name"]) in objects:
            env[item["name"]] = _decoded(objects["Secret", ref["name"]])[ref["key"]]
    return env


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


# -- rendering and schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, kubernetes_validate.latest_version()])
def test_overlay_renders_to_objects_valid_for_kubernetes(overlay: str, version: str) -> None:
    for doc in render(overlay):
        if doc["apiVersion"] != CERT_MANAGER:
            kubernetes_validate.validate(doc, f"{version}.0", strict=True)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.relative_to(K8S).as_posix())
def test_manifest_file_is_valid_for_kubernetes(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, f"{kubernetes_validate.latest_version()}.0", strict=True)


# -- each service's Deployment ---------------------------------------------------------------------


@each_service()
def test_deployment_migrates_in_an_init_container_then_serves_without(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    (init,) = pod_spec(deployment(objects, service))["initContainers"]
    main = main_container(objects, service)
    assert init["image"] == main["image"]
    assert init["image"].split(":")[0].endswith(f"vidmesh/{service.name}")
    assert init["args"] == ["migrate"]
    assert main["args"] == ["serve"]
    assert container_env(objects, main)["VIDMESH_SKIP_MIGRATE"] == "1"
    assert init["envFrom"] == main["envFrom"]
    assert secret_refs(init) == secret_refs(main)  # migrate makes the video service's bucket


def secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """The container's variables taken from a Secret: ``name -> (secret, key)``."""
    refs = {}
    for item in container.get("env", []):
        if "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            refs[item["name"]] = (ref["name"], ref["key"])
    return refs


@each_service()
def test_deployment_has_probes_resources_and_a_locked_down_container(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    spec = pod_spec(deployment(objects, service))
    main = main_container(objects, service)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in main, probe
    for container in [*spec["initContainers"], main]:
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    user = f"{spec['securityContext']['runAsUser']}:{spec['securityContext']['runAsGroup']}"
    assert user == "10001:10001"  # the Dockerfiles' USER
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]


@each_service()
def test_termination_grace_covers_the_pre_stop_pause_and_the_drain(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    spec = pod_spec(deployment(objects, service))
    main = main_container(objects, service)
    pause = main["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = float(container_env(objects, main)[service.env("drain_timeout")])
    assert spec["terminationGracePeriodSeconds"] >= pause + drain + 5


@each_service()
def test_readiness_asks_the_service_itself(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    probe = main_container(objects, service)["readinessProbe"]
    if service.name == "api-gateway":
        assert probe["httpGet"]["path"] == "/readyz"
    else:
        assert probe["exec"]["command"] == ["python", "-m", service.package, "health"]


@each_service()
def test_service_port_reaches_the_port_the_service_listens_on(
    objects: dict[tuple[str, str], Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = main_container(objects, service)
    env = container_env(objects, main)
    env.setdefault(service.env("database_url"), "postgresql://u:p@db/d")  # prod: out of band
    env.setdefault(service.env("jwt_access_secret"), secrets.token_hex(32))
    env.setdefault(service.env("jwt_refresh_secret"), secrets.token_hex(32))
    env.setdefault(service.env("kafka_sasl_password"), secrets.token_hex(16))  # prod: out of band
    settings = load_settings(service, env, monkeypatch)
    (port,) = main["ports"]
    assert port["containerPort"] == settings.port
    (exposed,) = objects["Service", service.name]["spec"]["ports"]
    assert exposed["port"] == settings.port
    assert exposed["targetPort"] == port["name"]
    selector = objects["Service", service.name]["spec"]["selector"]
    labels = deployment(objects, service)["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("name", ["api-gateway", "video"])
def test_gateway_and_video_scale_automatically_and_survive_disruptions(
    objects: dict[tuple[str, str], Any], name: str
) -> None:
    target = objects["HorizontalPodAutoscaler", name]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", name)
    assert "replicas" not in objects["Deployment", name]["spec"]  # the HPA owns it
    budget = objects["PodDisruptionBudget", name]["spec"]
    labels = objects["Deployment", name]["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()


def test_only_the_gateway_is_behind_the_ingress(objects: dict[tuple[str, str], Any]) -> None:
    ingresses = [o for (kind, _), o in objects.items() if kind == "Ingress"]
    backends = {
        (path["backend"]["service"]["name"], path["backend"]["service"]["port"]["name"])
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {("api-gateway", "http")}
    assert all(
        o["spec"].get("type", "ClusterIP") == "ClusterIP"
        for (k, _), o in objects.items()
        if k == "Service"
    )


# -- the object store ---------------------------------------------------------------------------


def video_settings(objects: dict[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    video = BY_NAME["video"]
    env = container_env(objects, main_container(objects, video))
    env.setdefault(video.env("database_url"), "postgresql://u:p@db/d")  # prod: out of band
    env.setdefault(video.env("kafka_sasl_password"), "kafka-secret")  # prod: out of band
    return load_settings(video, env, monkeypatch)


def test_video_takes_its_s3_keys_from_a_secret(objects: dict[tuple[str, str], Any]) -> None:
    refs = secret_refs(main_container(objects, BY_NAME["video"]))
    keys = {"VIDMESH_VIDEO_S3_ACCESS_KEY_ID", "VIDMESH_VIDEO_S3_SECRET_ACCESS_KEY"}
    assert keys <= set(refs)
    assert {secret.startswith("video-s3-credentials") for secret, _ in refs.values()} == {True}
    config = objects["ConfigMap", "video-config"]["data"]
    assert not [key for key in config if "ACCESS_KEY" in key]  # no key in a ConfigMap
    for service in SERVICES:
        if service.name != "video":
            assert not secret_refs(main_container(objects, service))


def test_video_store_settings_are_valid(
    objects: dict[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = video_settings(objects, monkeypatch)
    assert None not in (settings.s3_endpoint, settings.s3_public_endpoint)
    assert settings.s3_bucket
    host = objects["Ingress", "api-gateway"]["spec"]["rules"][0]["host"]
    assert any(urllib.parse.urlsplit(o).hostname == host for o in settings.s3_cors_origins)


def test_prod_uses_a_managed_store_whose_keys_are_made_outside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prod = {(doc["kind"], doc["metadata"]["name"]): doc for doc in render("prod")}
    settings = video_settings(prod, monkeypatch)
    assert settings.s3_endpoint.startswith("https://")
    assert settings.s3_path_style is False
    assert ("StatefulSet", STORE) not in prod
    assert not [name for kind, name in prod if kind == "Secret"]


def test_dev_video_reaches_the_dev_store_with_its_one_identity(
    dev: dict[tuple[str, str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = video_settings(dev, monkeypatch)
    (store,) = pod_spec(dev["StatefulSet", STORE])["containers"]
    flags = weed_flags(store["args"])
    endpoint = urllib.parse.urlsplit(settings.s3_endpoint)
    assert (endpoint.hostname, endpoint.port) == (STORE, int(flags["s3.port"]))
    assert dev["Service", STORE]["spec"]["ports"][0]["port"] == int(flags["s3.port"])
    assert store["ports"][0]["containerPort"] == int(flags["s3.port"])
    assert store["readinessProbe"]["httpGet"]["path"] == "/healthz"
    mount = next(m for m in store["volumeMounts"] if m["name"] == "identities")
    secret = pod_spec(dev["StatefulSet", STORE])["volumes"][0]["secret"]["secretName"]
    file = flags["s3.config"].removeprefix(mount["mountPath"] + "/")
    (identity,) = json.loads(_decoded(dev["Secret", secret])[file])["identities"]
    (credential,) = identity["credentials"]
    assert credential["accessKey"] == settings.s3_access_key_id.get_secret_value()
    assert credential["secretKey"] == settings.s3_secret_access_key.get_secret_value()


def test_dev_store_keeps_its_data_on_a_volume_claim(dev: dict[tuple[str, str], Any]) -> None:
    statefulset = dev["StatefulSet", STORE]
    (store,) = pod_spec(statefulset)["containers"]
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in store["volumeMounts"]


# -- network policies ------------------------------------------------------------------------------


def admitted(policy: dict[str, Any]) -> set[tuple[str, int]]:
    """``(app name, port)`` pairs a policy admits from pods of the namespace."""
    pairs = set()
    for rule in policy["spec"]["ingress"]:
        ports = [p["port"] for p in rule["ports"]]
        for peer in rule["from"]:
            selector = peer.get("podSelector", {})
            names = (
                [selector["matchLabels"]["app.kubernetes.io/name"]]
                if "matchLabels" in selector
                else []
            )
            for expression in selector.get("matchExpressions", []):
                names += expression["values"]
            pairs |= {(name, port) for name in names for port in ports}
    return pairs


def test_everything_is_denied_unless_a_policy_admits_it(
    objects: dict[tuple[str, str], Any],
) -> None:
    deny = objects["NetworkPolicy", "deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}


@each_service()
def test_each_service_admits_only_its_callers_on_its_port(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    policy = objects["NetworkPolicy", service.name]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": service.name}
    port = main_container(objects, service)["ports"][0]["containerPort"]
    assert admitted(policy) == {(caller, port) for caller in service.callers}
    if not service.callers:  # the gateway: the ingress controller only
        (rule,) = policy["spec"]["ingress"]
        (peer,) = rule["from"]
        assert set(peer) == {"namespaceSelector"}


def test_the_store_admits_the_services_that_reach_it(
    objects: dict[tuple[str, str], Any],
) -> None:
    policy = objects["NetworkPolicy", STORE]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": STORE}
    reaching = {(service.name, 8333) for service in SERVICES if service.reaches_store}
    assert admitted(policy) == reaching


# -- the dev overlay: in-cluster Postgres and Kafka --------------------------------------------


@each_service()
def test_dev_database_url_names_the_role_the_dev_postgres_creates(
    dev: dict[tuple[str, str], Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(service, container_env(dev, main_container(dev, service)), monkeypatch)
    url = parse_database_url(settings.database_url.get_secret_value())
    postgres = _decoded(by_name(dev, "Secret", "postgres-secrets"))
    assert (url.host, url.port) == (
        "postgres",
        dev["Service", "postgres"]["spec"]["ports"][0]["port"],
    )
    assert url.user == url.database == service.database
    assert url.password == postgres[service.password_var]
    assert url.host in {n for (k, n) in dev if k == "Service"}
    assert (service.name, 5432) in admitted(dev["NetworkPolicy", "postgres"])


@pytest.mark.parametrize("service", [s for s in SERVICES if s.uses_kafka], ids=lambda s: s.name)
def test_dev_kafka_bootstrap_is_the_dev_broker(
    dev: dict[tuple[str, str], Any], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(service, container_env(dev, main_container(dev, service)), monkeypatch)
    (broker,) = pod_spec(dev["StatefulSet", "kafka"])["containers"]
    advertised = {e["name"]: e["value"] for e in broker["env"]}["KAFKA_ADVERTISED_LISTENERS"]
    assert f"://{settings.kafka_bootstrap}" in advertised
    host, port = split_address(settings.kafka_bootstrap)
    assert dev["Service", host]["spec"]["ports"][0]["port"] == port
    assert (service.name, port) in admitted(dev["NetworkPolicy", "kafka"])


@pytest.mark.parametrize("callee", list(GATEWAY_ADDRESSES))
def test_dev_gateway_reaches_each_service_by_its_service_name(
    dev: dict[tuple[str, str], Any], callee: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = BY_NAME["api-gateway"]
    settings = load_settings(gateway, container_env(dev, main_container(dev, gateway)), monkeypatch)
    host, port = split_address(getattr(settings, GATEWAY_ADDRESSES[callee]))
    assert host == callee
    assert dev["Service", callee]["spec"]["ports"][0]["port"] == port


def test_dev_postgres_runs_the_compose_init_script(dev: dict[tuple[str, str], Any]) -> None:
    script = by_name(dev, "ConfigMap", "postgres-init")["data"]["10-init-databases.sh"]
    assert script == (DEPLOY / "postgres" / "init-databases.sh").read_text()
    (postgres,) = pod_spec(dev["StatefulSet", "postgres"])["containers"]
    mounts = {m["name"]: m["mountPath"] for m in postgres["volumeMounts"]}
    assert mounts["init"] == "/docker-entrypoint-initdb.d"
    assert mounts["data"] == "/var/lib/postgresql"


# -- service identity: mutual TLS between the services ---------------------------------------------


@each_service()
def test_each_service_mounts_its_own_certificate_and_talks_mutual_tls(
    objects: dict[tuple[str, str], Any], service: Service
) -> None:
    spec = pod_spec(deployment(objects, service))
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == f"{service.name}-tls"
    assert volumes["tls"]["secret"]["defaultMode"] == 0o440
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    container = main_container(objects, service)
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/tls", "readOnly": True}
    env = container_env(objects, container)  # prod has no Secrets here: read the variables
    assert env.get(service.env("tls_enabled"), "true").lower() in {"true", "1", "yes", "on"}
    assert env[service.env("tls_cert")] == "/tls/tls.crt"
    assert env[service.env("tls_key")] == "/tls/tls.key"
    assert env[service.env("tls_ca")] == "/tls/ca.crt"
    assert service.env("allowed_callers") not in env  # the default: the gateway only


@each_service()
def test_dev_certificates_name_each_service_for_both_ends(
    dev: dict[tuple[str, str], Any], service: Service
) -> None:
    certificate = dev["Certificate", service.name]["spec"]
    assert certificate["secretName"] == f"{service.name}-tls"
    assert certificate["dnsNames"] == [service.name] == [certificate["commonName"]]
    assert set(certificate["usages"]) == {"server auth", "client auth"}
    issuer = dev["Issuer", certificate["issuerRef"]["name"]]
    assert (
        issuer["spec"]["ca"]["secretName"] == dev["Certificate", "vidmesh-ca"]["spec"]["secretName"]
    )
    assert dev["Service", service.name]["metadata"]["name"] == service.name  # the name verified
