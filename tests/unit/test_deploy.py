"""deploy/ validates against the published schemas, offline: the Compose Specification as
check-jsonschema vendors it, and the Kubernetes OpenAPI schemas kubernetes-validate ships
(strict: an unknown field is an error). No engine runs here."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES = "1.33"
PROCESSES = {"gateway": ["serve"], "lookup": ["service", "lookup"],
             "accounts": ["service", "accounts"], "assistant": ["service", "assistant"],
             "consult": ["service", "consult"], "worker": ["worker"]}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_compose_file_follows_the_compose_specification() -> None:
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_validators_catch_mistakes() -> None:
    """Guard against a validation that passes anything."""
    schema_file = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    validator = jsonschema.Draft202012Validator(json.loads(schema_file.read_text()))
    broken = compose()
    broken["services"]["worker"]["helthcheck"] = broken["services"]["worker"]["healthcheck"]
    assert list(validator.iter_errors(broken))
    deployment = next(m for m in manifests() if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"][
        "pth"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_compose_runs_every_part_with_health_checks() -> None:
    services = compose()["services"]
    assert {"postgres", "kafka", "opensearch", *PROCESSES} <= services.keys()
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    for name in ("postgres", "kafka", "opensearch"):
        assert services[name]["healthcheck"]["test"]
    for name, command in PROCESSES.items():
        service = services[name]
        assert service["command"] == command
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["MEDCODE_MODE"] == "distributed"
        for needed in ("postgres", "kafka", "opensearch"):
            assert service["depends_on"][needed]["condition"] == "service_healthy"


def _id(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("manifest", manifests(), ids=_id)
def test_kubernetes_manifest_is_valid(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


def test_each_process_has_a_deployment_and_service_with_probes_and_its_settings() -> None:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for manifest in manifests():
        by_kind.setdefault(manifest["kind"], {})[manifest["metadata"]["name"]] = manifest
    assert "medcode" in by_kind["ConfigMap"] and "medcode" in by_kind["Secret"]
    for name, args in PROCESSES.items():
        deployment = by_kind["Deployment"][f"medcode-{name}"]
        assert f"medcode-{name}" in by_kind["Service"]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == args
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        sources = {next(iter(s)) : next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"configMapRef": "medcode", "secretRef": "medcode"}
    worker = by_kind["Deployment"]["medcode-worker"]["spec"]
    assert worker["replicas"] == 1 and worker["strategy"]["type"] == "Recreate"
    secret_keys = set(by_kind["Secret"]["medcode"]["stringData"])
    assert {"POSTGRES_PASSWORD", "MEDCODE_SERVICE_TOKEN"} <= secret_keys
    assert not secret_keys & set(by_kind["ConfigMap"]["medcode"]["data"])
