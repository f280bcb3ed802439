"""The Kubernetes manifests validate against the Kubernetes schemas, cover every process, and
hold the operational policy: probes, resources, non-root, a PDB and a NetworkPolicy per
Deployment, headless Services behind the gateway, preStop longer than its re-resolution,
every secret setting from the Secret (and every key in the template), per-release migrations."""
import importlib.util
import re
import urllib.parse
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
K8S_VERSION = "1.30.0"


def load_all():
    return [(str(p.relative_to(K8S)), d) for p in sorted(K8S.rglob("*.yaml"))
            for d in yaml.safe_load_all(p.read_text()) if d]


def render_module():
    spec = importlib.util.spec_from_file_location("render", K8S / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    return render


def of_kind(kind):
    return [d for _, d in load_all() if d["kind"] == kind]


def selects(selector: dict, pod_labels: dict) -> bool:
    return all(pod_labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def manifest_id(x) -> str:
    return x if isinstance(x, str) else x["kind"] + "/" + x["metadata"]["name"]


@pytest.mark.parametrize("fname,doc", load_all(), ids=manifest_id)
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
        assert any(k == "Job" and re.fullmatch(rf"migrate-{schema}-[a-z0-9-]+", n) for k, n in kinds), kinds


def test_committed_manifests_match_the_generator():
    render = render_module()
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


# ---------------------------------------------------------------- policy

def test_every_deployment_meets_the_policy():
    render = render_module()
    pdbs, policies = of_kind("PodDisruptionBudget"), of_kind("NetworkPolicy")
    for d in of_kind("Deployment"):
        name, pod = d["metadata"]["name"], d["spec"]["template"]
        spec, (c,) = pod["spec"], pod["spec"]["containers"]
        assert d["spec"]["replicas"] >= 1
        assert c["readinessProbe"] and c["livenessProbe"], name
        res = c["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"], name
        sec = c["securityContext"]
        assert sec["runAsNonRoot"] is True and sec["runAsUser"] != 0, name
        assert sec["allowPrivilegeEscalation"] is False and sec["capabilities"]["drop"] == ["ALL"], name
        assert sec["readOnlyRootFilesystem"] is True, name
        # Rollouts: the pod outlives the gateway's re-resolution and the DNS cache, then drains.
        sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert sleep > render.RESOLVE_INTERVAL_S + render.DNS_TTL_S, name
        assert spec["terminationGracePeriodSeconds"] > sleep + render.SHUTDOWN_TIMEOUT_S, name
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        pod_labels = pod["metadata"]["labels"]
        assert [p for p in pdbs if selects(p["spec"]["selector"], pod_labels)], f"no PodDisruptionBudget for {name}"
        own = [p for p in policies if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"], pod_labels)]
        assert own and set(own[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}, name


def test_services_behind_the_gateway_are_headless():
    services = {s["metadata"]["name"]: s for s in of_kind("Service")}
    for name in ("auth-service", "tenant-service", "ticket-service"):
        assert services[name]["spec"]["clusterIP"] == "None", name
    config = of_kind("ConfigMap")[0]["data"]
    for pool, port in (("AUTH", 8081), ("TENANT", 8082), ("TICKET", 8083)):
        upstream = urllib.parse.urlsplit(config[f"GATEWAY_{pool}_UPSTREAMS"])
        assert services[upstream.hostname]["spec"]["clusterIP"] == "None"
        assert upstream.port == port, pool
    assert float(config["GATEWAY_RESOLVE_INTERVAL_S"]) == render_module().RESOLVE_INTERVAL_S


def test_network_policies_only_the_gateway_reaches_the_services():
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind("NetworkPolicy")}
    assert policies["default-deny"]["podSelector"] == {}
    assert set(policies["default-deny"]["policyTypes"]) == {"Ingress", "Egress"}
    for name in ("ticket-service",):
        peers = [peer for rule in policies[name]["ingress"] for peer in rule["from"]]
        pods = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in peers if "podSelector" in p}
        assert pods == {"gateway"}
    gateway_from = [peer for rule in policies["gateway"]["ingress"] for peer in rule["from"]]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in gateway_from
    # The services reach only their backing servers (and the internal calls they make).
    ticket_egress = policies["ticket-service"]["egress"]
    ports = {p["port"] for rule in ticket_egress for p in rule["ports"]}
    assert ports == {5432, 6432, 5672, 8081}


def test_ingress_routes_to_the_gateway_which_trusts_the_proxy_address():
    (ing,) = of_kind("Ingress")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "gateway" and backend["port"]["number"] == 8080
    config = of_kind("ConfigMap")[0]["data"]
    assert config["GATEWAY_TRUSTED_PROXIES"]


def test_every_secret_setting_comes_from_the_secret_template():
    from pydantic import SecretStr

    from auth_service.config import Settings as Auth
    from gateway.config import Settings as Gateway
    from tenant_service.config import Settings as Tenant
    from ticket_service.config import Settings as Ticket
    template = {s["metadata"]["name"]: s for s in of_kind("Secret")}
    keys = set(template["saas-secrets"]["stringData"])
    referenced = set()
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}
    for d in [*of_kind("Deployment"), *of_kind("Job")]:
        for c in d["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "saas-secrets"
                    referenced.add(ref["key"])
    assert referenced == keys, "the Secret template and the manifests disagree"
    # Every SecretStr setting of a process is set from the Secret (the signing keys come
    # from their own Secret, mounted as files).
    for name, cls in (("gateway", Gateway), ("auth-service", Auth), ("tenant-service", Tenant),
                      ("ticket-service", Ticket)):
        prefix = cls.model_config.get("env_prefix", "")
        env = {e["name"] for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]}
        for field, info in cls.model_fields.items():
            if info.annotation is SecretStr and field != "signing_keys":
                alias = info.validation_alias
                var = alias.choices[0] if alias is not None else prefix + field.upper()
                assert var in env, f"{name}: {var} is not set from the Secret"


def test_jobs_have_resources_and_migrations_are_per_release():
    render = render_module()
    for job in of_kind("Job"):
        (c,) = job["spec"]["template"]["spec"]["containers"]
        assert c["resources"]["requests"] and c["resources"]["limits"], job["metadata"]["name"]
        assert c["securityContext"]["runAsNonRoot"] is True
        assert job["spec"]["ttlSecondsAfterFinished"] > 0
    names = [j["metadata"]["name"] for j in of_kind("Job") if j["metadata"]["name"].startswith("migrate-")]
    assert names and all(n.endswith(render.release_suffix()) for n in names)
    assert all(c["image"].endswith(":" + render.RELEASE) for j in of_kind("Job")
               for c in j["spec"]["template"]["spec"]["containers"])


def test_auth_has_a_cpu_limit_for_argon2():
    auth = next(d for d in of_kind("Deployment") if d["metadata"]["name"] == "auth-service")
    assert auth["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]
