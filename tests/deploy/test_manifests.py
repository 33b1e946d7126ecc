"""The deployment files say what the code does: every Kubernetes document parses and fits the
others (probes on the container's port, the migration Job runs a command the CLI has, the HPA
scales the Deployment, one image, settings that exist), and the image installs the lock file.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from adaptive_lti.cli import build_parser, server
from adaptive_lti.settings import Settings
from adaptive_lti.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _documents() -> dict[str, dict[str, Any]]:
    documents = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if d]
    by_kind: dict[str, dict[str, Any]] = {}
    for document in documents:
        assert {"apiVersion", "kind", "metadata"} <= set(document), document
        assert document["kind"] not in by_kind, f"two {document['kind']} documents"
        by_kind[document["kind"]] = document
    return by_kind


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return _documents()


def _pod(manifests: dict[str, dict[str, Any]], kind: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests[kind]["spec"]["template"]["spec"]
    return spec


def _all_containers(manifests: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = []
    for kind in ("Deployment", "Job"):
        pod = _pod(manifests, kind)
        containers += pod.get("initContainers", []) + pod["containers"]
    return containers


def _cli(command: list[str]) -> Any:
    """The parsed command line, as the installed 'adaptive-lti' script would parse it."""
    assert command[0] == "adaptive-lti", command
    scripts = (ROOT / "pyproject.toml").read_text()
    assert 'adaptive-lti = "adaptive_lti.cli:main"' in scripts
    return build_parser().parse_args(command[1:])


def test_the_documents_are_the_ones_a_deployment_needs(
    manifests: dict[str, dict[str, Any]],
) -> None:
    assert set(manifests) == {
        "ConfigMap",
        "Job",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    assert manifests["Deployment"]["apiVersion"] == "apps/v1"
    assert manifests["HorizontalPodAutoscaler"]["apiVersion"] == "autoscaling/v2"
    assert manifests["Job"]["apiVersion"] == "batch/v1"


def test_the_job_migrates_and_the_pods_wait_for_it_and_do_not_migrate(
    manifests: dict[str, dict[str, Any]],
) -> None:
    (migrate,) = _pod(manifests, "Job")["containers"]
    assert _cli(migrate["command"]).handler is server.run_db_upgrade
    assert _pod(manifests, "Job")["restartPolicy"] in {"OnFailure", "Never"}
    (wait,) = _pod(manifests, "Deployment")["initContainers"]
    assert _cli(wait["command"]).handler is server.run_db_check
    (tool,) = _pod(manifests, "Deployment")["containers"]
    serve = _cli(tool["command"])
    assert serve.handler is server.run_serve
    assert serve.migrate is False, "the Job migrates; replicas racing the migration would clash"
    assert serve.host == "0.0.0.0"


def test_probes_and_the_service_use_the_port_the_tool_listens_on(
    manifests: dict[str, dict[str, Any]],
) -> None:
    (tool,) = _pod(manifests, "Deployment")["containers"]
    serve = _cli(tool["command"])
    (port,) = tool["ports"]
    assert port["containerPort"] == serve.port
    names = {port["name"]: port["containerPort"]}
    for probe in ("readinessProbe", "livenessProbe"):
        target = tool[probe]["httpGet"]["port"]
        assert names.get(target, target) == serve.port, probe
    assert tool["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert tool["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # Liveness must be a route that answers without the database (the readiness probe, added
    # by the health checks, is the one that asks the database).
    app = create_app(Settings(database_url="sqlite://", environment="test"))
    assert TestClient(app).get("/healthz").status_code == 200
    (service_port,) = manifests["Service"]["spec"]["ports"]
    assert names.get(service_port["targetPort"], service_port["targetPort"]) == serve.port
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    budget = manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    assert budget.items() <= labels.items()


def test_the_autoscaler_scales_the_deployment(manifests: dict[str, dict[str, Any]]) -> None:
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    deployment = manifests["Deployment"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert 1 <= hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]
    (tool,) = _pod(manifests, "Deployment")["containers"]
    # CPU utilisation is measured against the request: without one the HPA cannot scale.
    assert tool["resources"]["requests"]["cpu"]


def test_one_image_and_the_same_settings_everywhere(manifests: dict[str, dict[str, Any]]) -> None:
    containers = _all_containers(manifests)
    assert len({container["image"] for container in containers}) == 1
    config = manifests["ConfigMap"]["data"]
    fields = set(Settings.model_fields)
    for name in config:
        assert name.startswith("ADAPTIVE_LTI_") and name[13:].lower() in fields, name
    environments = []
    for container in containers:
        assert container["envFrom"] == [
            {"configMapRef": {"name": manifests["ConfigMap"]["metadata"]["name"]}}
        ]
        for variable in container["env"]:
            assert variable["name"][13:].lower() in fields, variable["name"]
        environments.append(container["env"])
    assert all(env == environments[0] for env in environments), "one database, one secret"
    # The settings validate as production would read them (placeholders for the secret parts).
    values = {name[13:].lower(): value for name, value in config.items()}
    settings = Settings(**values, secret_key="x" * 48, database_url="postgresql://h/db")
    assert settings.environment == "production"
    (tool,) = _pod(manifests, "Deployment")["containers"]
    pause = int(tool["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace = _pod(manifests, "Deployment")["terminationGracePeriodSeconds"]
    assert pause + settings.graceful_shutdown_seconds < grace


def _dockerfile() -> list[tuple[str, str]]:
    lines = []
    for raw in (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, rest = stripped.partition(" ")
            lines.append((instruction.upper(), rest.strip()))
    return lines


def test_the_image_installs_the_lock_file_for_its_python() -> None:
    steps = _dockerfile()
    (base,) = [rest for instruction, rest in steps if instruction == "FROM"]
    image_python = re.fullmatch(r"python:(\d+\.\d+)-slim", base)
    assert image_python is not None, base
    header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    assert f"--python-version {image_python.group(1)}" in header
    runs = [rest for instruction, rest in steps if instruction == "RUN"]
    assert any("--require-hashes -r requirements.lock" in run for run in runs), runs
    # The project itself adds nothing unpinned.
    assert any("--no-deps" in run and "-e ." in run for run in runs), runs
    for instruction, rest in steps:
        if instruction == "COPY":
            *sources, _target = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    (cmd,) = [rest for instruction, rest in steps if instruction == "CMD"]
    serve = _cli(yaml.safe_load(cmd))
    assert serve.handler is server.run_serve
    (exposed,) = [rest for instruction, rest in steps if instruction == "EXPOSE"]
    assert int(exposed) == serve.port


def test_compose_runs_the_image_with_settings_that_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    tool = compose["services"]["tool"]
    assert tool["build"]["dockerfile"] == "deploy/Dockerfile"
    fields = set(Settings.model_fields)
    for name in tool["environment"]:
        assert name.startswith("ADAPTIVE_LTI_") and name[13:].lower() in fields, name
    (published,) = tool["ports"]
    steps = dict(_dockerfile())
    assert published.rsplit(":", 1)[1] == steps["EXPOSE"]
    assert shlex.split(tool["stop_grace_period"].rstrip("s"))[0].isdigit()
