"""deploy/ files are checked by parsing them (there is no container engine here).

The environment names they set are checked against ``hub.config.Settings`` (pydantic-settings
ignores unknown ``HUB_`` variables, so a typo would otherwise go unnoticed), and the roles they
run against the ``hub run`` commands.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shlex
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from pydantic import BaseModel, SecretStr

from hub.cli import app as cli_app
from hub.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"

#: The roles deployed as their own processes; `hub run all` is the single-node mode.
ROLES = ("ingest", "process", "relay", "project", "dispatch", "webhooks", "api")
NOT_DEPLOYED = {"all"}
PORT = 8000
UID = 10001
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"


# --- settings the files may use ---------------------------------------------------------------


def _model(annotation: Any) -> type[BaseModel] | None:
    """The nested settings model a field holds (``HUB_<FIELD>__<SUB>``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _mentions_secret(annotation: Any) -> bool:
    return annotation is SecretStr or any(_mentions_secret(a) for a in typing.get_args(annotation))


def _setting_names() -> dict[str, bool]:
    """Every environment name Settings reads (HUB_X, HUB_NESTED__Y) -> whether it is a secret."""
    names: dict[str, bool] = {}
    for name, field in Settings.model_fields.items():
        nested = _model(field.annotation)
        if nested is not None:
            for sub, subfield in nested.model_fields.items():
                names[f"HUB_{name}__{sub}".upper()] = _mentions_secret(subfield.annotation)
        else:
            names[f"HUB_{name}".upper()] = _mentions_secret(field.annotation)
    return names


SETTINGS = _setting_names()
SECRET_SETTINGS = {name for name, secret in SETTINGS.items() if secret}
#: Settings that hold a password inside a URL.
URL_SECRETS = {"HUB_STORE_URL", "HUB_VIEWS_URL"}


def test_the_setting_names_are_derived_from_the_settings_model() -> None:
    assert {"HUB_STORE_URL", "HUB_KAFKA__BOOTSTRAP_SERVERS", "HUB_LOG_LEVEL"} <= set(SETTINGS)
    assert {"HUB_MASTER_KEY", "HUB_ADDRESS_PEPPER", "HUB_ADMIN_TOKEN"} <= SECRET_SETTINGS
    assert "HUB_KAFKA__SASL_PASSWORD" in SECRET_SETTINGS
    assert "HUB_KAFKA" not in SETTINGS
    assert "HUB_STORE_URL" not in SECRET_SETTINGS


def _settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process with exactly this HUB_ environment would read them."""
    for name in list(os.environ):
        if name.startswith("HUB_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# --- Dockerfile --------------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), rest))
            current = ""
    return lines


def test_dockerfile_runs_the_embedded_hub_as_an_unprivileged_user() -> None:
    steps = _instructions(DEPLOY / "Dockerfile")
    keywords = [k for k, _ in steps]
    known = {
        "FROM",
        "ENV",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "VOLUME",
        "EXPOSE",
        "HEALTHCHECK",
        "STOPSIGNAL",
        "CMD",
    }
    assert set(keywords) <= known
    assert keywords[0] == "FROM"
    assert steps[0][1].startswith("python:3.1")
    for keyword, rest in steps:
        if keyword == "COPY":
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), f"COPY source {source} missing"
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == ["hub", "serve"]
    assert dict(steps)["USER"] == "hub"
    assert "8000" in dict(steps)["EXPOSE"]
    env = dict(steps)["ENV"]
    assert "HUB_DATA_DIR=/data" in env
    assert "HUB_HOST=0.0.0.0" in env
    assert "/readyz" in dict(steps)["HEALTHCHECK"]


def test_dockerfile_user_and_working_directory_fit_the_deployments() -> None:
    steps = _instructions(DEPLOY / "Dockerfile")
    run = " ".join(rest for keyword, rest in steps if keyword == "RUN")
    assert f"--uid {UID}" in run  # the uid the Kubernetes securityContext names
    assert "chown hub /data" in run
    # The Faust workers write their data directory relative to the working directory,
    # so it must be writable by the hub user: /data, not the root-owned /app.
    keywords = [k for k, _ in steps]
    after_user = steps[keywords.index("USER") :]
    assert [rest for k, rest in after_user if k == "WORKDIR"] == ["/data"]


# --- compose.yaml ------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _interpolate(value: Any) -> str:
    """Compose's variable substitution, with every required variable set to a stand-in."""

    def substitute(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        return f"stand-in-{match['name'].lower()}"

    return _INTERPOLATION.sub(substitute, str(value)).replace("$$", "$")


def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _hub_services() -> dict[str, dict[str, Any]]:
    """Services running the hub image (kafka-init and the roles)."""
    return {name: s for name, s in _services().items() if _command(s)[:1] == ["hub"]}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def test_compose_runs_kafka_in_kraft_mode_with_a_healthcheck() -> None:
    kafka = _services()["kafka"]
    image = kafka["image"]
    assert image.startswith("apache/kafka:")
    assert re.fullmatch(r"apache/kafka:[34]\.\d+\.\d+", image), "pin a 3.x or 4.x release"
    env = _environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert [v.split("@")[0] for v in voters] == [node_id]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    listeners = dict(
        item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(",") if "://" in item
    )
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert controller in listeners
    assert set(listeners) <= set(protocols)
    controller_port = listeners[controller].rsplit(":", 1)[1]
    assert voters[0].endswith(f"kafka:{controller_port}")
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    # The hub reaches the broker at the address it advertises.
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    bootstraps = {_environment(s)["HUB_KAFKA__BOOTSTRAP_SERVERS"] for s in _hub_services().values()}
    assert bootstraps == set(advertised.values())
    assert controller not in advertised
    test = " ".join(kafka["healthcheck"]["test"])
    assert "kafka-topics.sh" in test
    assert "--bootstrap-server" in test


def test_compose_runs_postgres_with_a_healthcheck_and_a_volume() -> None:
    compose = _compose()
    postgres = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9]+)?", postgres["image"]), "pin a major"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volumes = [v.split(":")[0] for v in postgres["volumes"]]
    assert volumes
    assert set(volumes) <= set(compose["volumes"])
    env = _environment(postgres)
    for service in _hub_services().values():
        for name in ("HUB_STORE_URL", "HUB_VIEWS_URL"):
            url = urlsplit(_interpolate(_environment(service)[name]))
            assert url.scheme == "postgresql"
            assert url.hostname == "postgres"
            assert url.port == 5432
            assert url.username == env["POSTGRES_USER"]
            assert url.password == _interpolate(env["POSTGRES_PASSWORD"])
            assert url.path == f"/{env['POSTGRES_DB']}"


def test_compose_creates_the_topics_once_kafka_is_healthy() -> None:
    init = _services()["kafka-init"]
    assert _command(init) == ["hub", "kafka", "init"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert str(init.get("restart", "no")) == "no"


def test_compose_runs_one_service_per_role() -> None:
    for role in ROLES:
        running = [n for n, s in _services().items() if _command(s) == ["hub", "run", role]]
        assert len(running) == 1, f"{role}: {running}"
    deployed = {_command(s)[2] for s in _hub_services().values() if _command(s)[1] == "run"}
    assert deployed == set(ROLES)


def test_every_hub_service_waits_for_postgres_and_the_topics() -> None:
    for name, service in _hub_services().items():
        if name == "kafka-init":
            continue
        depends = service["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["kafka-init"]["condition"] == "service_completed_successfully", name


def test_every_hub_service_is_built_from_the_dockerfile_and_stops_gracefully() -> None:
    for name, service in _hub_services().items():
        build = service["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
        assert service["stop_grace_period"] == "30s", name
        if name == "kafka-init":
            continue
        test = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{PORT}/readyz" in test, name
        assert _environment(service)["HUB_PORT"] == str(PORT), name
        assert _environment(service)["HUB_HOST"] == "0.0.0.0", name
        for mapping in service.get("ports", []):
            assert str(mapping).endswith(f":{PORT}"), name
    images = {s["image"] for s in _hub_services().values()}
    assert len(images) == 1, "one image for every role"


def test_compose_environment_names_are_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    brokers = sum(
        1 for s in _services().values() if str(s.get("image", "")).startswith("apache/kafka:")
    )
    for name, service in _hub_services().items():
        env = _environment(service)
        hub_names = {k for k in env if k.startswith("HUB_")}
        assert hub_names == set(env), f"{name}: not a hub setting: {set(env) - hub_names}"
        assert hub_names <= set(SETTINGS), f"{name}: unknown {hub_names - set(SETTINGS)}"
        settings = _settings_from({k: _interpolate(v) for k, v in env.items()}, monkeypatch)
        assert settings.resolved_store_url().startswith("postgresql://")
        assert settings.resolved_views_url().startswith("postgresql://")
        assert settings.master_key is not None
        assert settings.address_pepper is not None
        assert settings.kafka.replication_factor <= brokers, "more replicas than brokers"
        assert "HUB_KAFKA__RETENTION_HOURS" in env


def test_compose_takes_the_secrets_from_the_environment() -> None:
    for name, service in _hub_services().items():
        env = _environment(service)
        assert {"HUB_MASTER_KEY", "HUB_ADDRESS_PEPPER", "HUB_ADMIN_TOKEN"} <= set(env), name
        for key in set(env) & SECRET_SETTINGS:
            # ${NAME:?message}: compose refuses to start without it, and there is no default.
            assert re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", env[key]), f"{name}: {key}"
        for key in set(env) & URL_SECRETS:
            # postgresql://user:${PASSWORD:?message}@host:port/db
            pattern = r"postgresql://\w+:\$\{\w+:\?[^}]+\}@[\w.-]+:\d+/\w+"
            assert re.fullmatch(pattern, env[key]), f"{name}: {key} password"
    postgres = _environment(_services()["postgres"])
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


# --- Kubernetes --------------------------------------------------------------------------------


def _kubernetes() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                documents.append((path.name, document))
    return documents


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in _kubernetes() if d["kind"] == kind]


def _container(pod_spec: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec["containers"]
    assert len(containers) == 1
    container = containers[0]
    assert isinstance(container, dict)
    return container


def _runs(container: dict[str, Any]) -> list[str]:
    return [str(c) for c in container.get("command", []) + container.get("args", [])]


def _deployments() -> dict[str, dict[str, Any]]:
    """Deployments by the role they run."""
    deployments: dict[str, dict[str, Any]] = {}
    for deployment in _of_kind("Deployment"):
        runs = _runs(_container(deployment["spec"]["template"]["spec"]))
        assert runs[:2] == ["hub", "run"], deployment["metadata"]["name"]
        assert runs[2] not in deployments, f"{runs[2]} deployed twice"
        deployments[runs[2]] = deployment
    return deployments


def _config_map() -> dict[str, Any]:
    (config,) = _of_kind("ConfigMap")
    return config


def _secret_example() -> dict[str, Any]:
    (secret,) = _of_kind("Secret")
    return secret


def test_every_kubernetes_document_is_complete_and_namespace_free() -> None:
    documents = _kubernetes()
    assert documents
    seen = set()
    for filename, document in documents:
        assert document.get("apiVersion"), filename
        assert document.get("kind"), filename
        metadata = document.get("metadata", {})
        assert metadata.get("name"), filename
        assert "namespace" not in metadata, f"{filename}: apply with -n instead"
        assert metadata.get("labels", {}).get(LABEL_NAME) == "interaction-hub", filename
        key = (document["kind"], metadata["name"])
        assert key not in seen, f"{filename}: {key} twice"
        seen.add(key)
    assert any(name == "secret.example.yaml" for name, _ in documents)


def test_each_role_has_a_deployment_running_it() -> None:
    deployments = _deployments()
    assert set(deployments) == set(ROLES)
    for role, deployment in deployments.items():
        assert _runs(_container(deployment["spec"]["template"]["spec"])) == ["hub", "run", role]


def test_deployment_selectors_match_their_pod_templates() -> None:
    for role, deployment in _deployments().items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), role
        assert labels[LABEL_NAME] == "interaction-hub", role
        assert labels[LABEL_COMPONENT] == role, role
        assert selector[LABEL_COMPONENT] == role, "selectors of two roles must not overlap"
        assert deployment["metadata"]["labels"][LABEL_COMPONENT] == role


def _port_of(container: dict[str, Any], port: Any) -> int:
    """The containerPort a probe or Service port refers to (by name or number)."""
    declared = {p["containerPort"]: p for p in container["ports"]}
    named = {p["name"]: p["containerPort"] for p in container["ports"] if "name" in p}
    if isinstance(port, str):
        assert port in named, f"no container port named {port}"
        return int(named[port])
    assert port in declared, f"no container port {port}"
    return int(port)


def test_deployments_probe_liveness_and_readiness_on_the_container_port() -> None:
    hub_port = int(_config_map()["data"]["HUB_PORT"])
    assert hub_port == PORT
    for role, deployment in _deployments().items():
        container = _container(deployment["spec"]["template"]["spec"])
        assert [p["containerPort"] for p in container["ports"]] == [hub_port], role
        liveness = container["livenessProbe"]["httpGet"]
        readiness = container["readinessProbe"]["httpGet"]
        assert liveness["path"] == "/healthz", role
        assert readiness["path"] == "/readyz", role
        assert _port_of(container, liveness["port"]) == hub_port, role
        assert _port_of(container, readiness["port"]) == hub_port, role
        if "startupProbe" in container:
            startup = container["startupProbe"]["httpGet"]
            assert startup["path"] == "/healthz", role
            assert _port_of(container, startup["port"]) == hub_port, role
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:
            assert int(annotations["prometheus.io/port"]) == hub_port, role


def test_deployments_run_unprivileged_with_resources_and_a_grace_period() -> None:
    images = set()
    for role, deployment in _deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        container = _container(pod)
        security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert security["runAsNonRoot"] is True, role
        assert security["runAsUser"] == UID, role
        assert security.get("allowPrivilegeEscalation") is False, role
        assert pod["terminationGracePeriodSeconds"] == 30, role
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{role} {kind}"
        refs = [next(iter(source.items())) for source in container["envFrom"] if len(source) == 1]
        assert ("configMapRef", {"name": _config_map()["metadata"]["name"]}) in refs, role
        assert ("secretRef", {"name": "interaction-hub"}) in refs, role
        if security.get("readOnlyRootFilesystem"):
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {"/data", "/tmp"} <= mounts, f"{role}: needs writable /data and /tmp"
        images.add(container["image"])
    assert len(images) == 1, "one image for every role"
    replicas = {role: d["spec"]["replicas"] for role, d in _deployments().items()}
    assert replicas["relay"] == 2, "one active relay and a hot standby"
    assert all(count >= 1 for count in replicas.values())


def test_services_select_role_pods_and_target_declared_ports() -> None:
    deployments = _deployments()
    covered = set()
    for service in _of_kind("Service"):
        name = service["metadata"]["name"]
        selector = service["spec"]["selector"]
        matches = [
            role
            for role, d in deployments.items()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, f"{name} selects {matches}"
        role = matches[0]
        covered.add(role)
        container = _container(deployments[role]["spec"]["template"]["spec"])
        for port in service["spec"]["ports"]:
            assert _port_of(container, port.get("targetPort", port["port"])) == PORT, name
        if role in ("ingest", "api"):
            assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
            assert [p["port"] for p in service["spec"]["ports"]] == [80], name
    assert covered == set(ROLES), "every role is reachable for scraping /metrics"


def test_kafka_init_job_runs_hub_kafka_init() -> None:
    (job,) = _of_kind("Job")
    pod = job["spec"]["template"]["spec"]
    container = _container(pod)
    assert _runs(container) == ["hub", "kafka", "init"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    assert {next(iter(s)) for s in container["envFrom"]} == {"configMapRef", "secretRef"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    relay = _container(_deployments()["relay"]["spec"]["template"]["spec"])
    assert container["image"] == relay["image"]


def test_config_map_and_secret_keys_are_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config_map()["data"]
    secret = _secret_example()["stringData"]
    assert set(config) <= set(SETTINGS), set(config) - set(SETTINGS)
    assert set(secret) <= set(SETTINGS), set(secret) - set(SETTINGS)
    assert not set(config) & (SECRET_SETTINGS | URL_SECRETS), "secrets belong in the Secret"
    assert {"HUB_MASTER_KEY", "HUB_ADDRESS_PEPPER", "HUB_ADMIN_TOKEN", "HUB_STORE_URL"} <= set(
        secret
    )
    assert config["HUB_HOST"] == "0.0.0.0"
    assert "HUB_KAFKA__RETENTION_HOURS" in config
    settings = _settings_from({**config, **secret}, monkeypatch)
    assert settings.port == PORT
    assert settings.kafka.replication_factor >= 3, "production: replicate every partition"
    assert settings.resolved_store_url().startswith("postgresql://")


def _looks_like_a_key(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def test_secret_example_holds_placeholders_only() -> None:
    secret = _secret_example()
    assert "data" not in secret, "use stringData, so placeholders are visible as such"
    # A different name from the Secret the pods read: applying the whole directory can never
    # overwrite the real one with placeholders.
    assert secret["metadata"]["name"] != "interaction-hub"
    for key, value in secret["stringData"].items():
        if key in URL_SECRETS:
            password = urlsplit(value).password or ""
            assert password.startswith("CHANGE-ME"), key
        else:
            assert str(value).startswith("CHANGE-ME"), key
        assert not _looks_like_a_key(str(value)), key


# --- the CLI and the docs ----------------------------------------------------------------------


def _cli_roles() -> set[str]:
    group = typer.main.get_command(cli_app)
    run = group.commands["run"]  # type: ignore[attr-defined]
    return set(run.commands)


def test_every_role_of_the_cli_is_deployed() -> None:
    roles = _cli_roles()
    assert roles - NOT_DEPLOYED == set(ROLES), "a role of `hub run` is not deployed, or gone"
    compose_roles = {_command(s)[2] for s in _hub_services().values() if _command(s)[1] == "run"}
    assert compose_roles == set(ROLES)
    assert set(_deployments()) == set(ROLES)


def test_operations_doc_names_real_settings_and_every_role() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    names = set(re.findall(r"\bHUB_[A-Z0-9_]*[A-Z0-9]", text))
    assert names
    assert names <= set(SETTINGS), names - set(SETTINGS)
    for role in ROLES:
        assert f"hub run {role}" in text, role
    assert "deploy/compose.yaml" in text
    assert "deploy/kubernetes/" in text
