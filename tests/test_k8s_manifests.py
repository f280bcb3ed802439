"""The Kubernetes manifests validate against the Kubernetes schemas and cover every process."""
import importlib.util
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
K8S_VERSION = "1.30.0"


def load_all():
    return [(p.name, d) for p in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(p.read_text()) if d]


@pytest.mark.parametrize("fname,doc", load_all(), ids=lambda x: x if isinstance(x, str) else x["kind"] + "/" + x["metadata"]["name"])
def test_manifest_is_schema_valid(fname, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_process_has_deployment_service_hpa_and_probes():
    docs = [d for _, d in load_all()]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for name in ("gateway", "auth-service", "tenant-service", "ticket-service", "audit-consumer"):
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
            assert (kind, name) in kinds
    for d in docs:
        if d["kind"] == "Deployment":
            c = d["spec"]["template"]["spec"]["containers"][0]
            assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
            assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
            assert any(e.get("valueFrom", {}).get("secretKeyRef") for e in c["env"])
            assert {"configMapRef": {"name": "saas-config"}} in c["envFrom"]
    for schema in ("auth", "tenant", "ticket"):
        assert ("Job", f"migrate-{schema}") in kinds


def test_committed_manifests_match_the_generator():
    spec = importlib.util.spec_from_file_location("render", K8S / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    for fname, text in render.render().items():
        assert (K8S / fname).read_text() == text, f"{fname} is stale: run python deploy/k8s/render.py"


def test_every_secret_comes_from_the_secret_and_production_is_explicit():
    """Production mode refuses development secrets, so each process gets every secret it checks
    from the Secret (a separate key per purpose), never a literal value."""
    docs = [d for _, d in load_all()]
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config["data"]["ENVIRONMENT"] == "production"
    assert not any("SECRET" in k or "TOKEN" in k or "PASSWORD" in k for k in config["data"])
    wanted = {"gateway": {"INTERNAL_API_TOKEN"}, "audit-consumer": {"INTERNAL_API_TOKEN"},
              "auth-service": {"INTERNAL_API_TOKEN", "AUTH_CURSOR_SECRET"},
              "tenant-service": {"INTERNAL_API_TOKEN", "TENANT_CURSOR_SECRET"},
              "ticket-service": {"INTERNAL_API_TOKEN", "TICKET_CURSOR_SECRET"}}
    keys = {}
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        env = {e["name"]: e for e in d["spec"]["template"]["spec"]["containers"][0]["env"]}
        for name in wanted[d["metadata"]["name"]] | {"AMQP_URL"}:
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "saas-secrets" and "value" not in env[name]
            keys.setdefault(name, set()).add(ref["key"])
    cursor_keys = [keys[n] for n in ("AUTH_CURSOR_SECRET", "TENANT_CURSOR_SECRET", "TICKET_CURSOR_SECRET")]
    flat = [k for ks in cursor_keys for k in ks] + list(keys["INTERNAL_API_TOKEN"])
    assert len(flat) == len(set(flat)) == 4, keys
