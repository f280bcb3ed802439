"""Render the Kubernetes manifests in this folder (run after changing a process or setting).

    python deploy/k8s/render.py          # rewrites deploy/k8s/*.yaml and deploy/k8s/templates/*.yaml
A test checks the committed files equal this output and validate against the Kubernetes schemas,
and a policy test (tests/test_k8s_manifests.py) holds the operational rules below.

Rollouts: the services the gateway reaches are headless Services, so their name resolves to
the ready pods and the gateway balances (and ejects) real pods. A pod being replaced leaves
the name first; its preStop sleep (PRESTOP_S) outlasts the gateway's re-resolution
(GATEWAY_RESOLVE_INTERVAL_S) plus the cluster DNS cache, so no new request reaches it after it
stops listening. templates/ is not applied with `kubectl apply -f deploy/k8s/`: the Secret
template lists every secret key for the operator to fill.
"""
from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RELEASE = "0.1.0"
IMAGE = f"saas-backend:{RELEASE}"
NAMESPACE = "saas"
SECRET = "saas-secrets"  # created by the operator from templates/saas-secrets.yaml: see README "Kubernetes"
SIGNING_KEYS_SECRET = "saas-signing-keys"
RESOLVE_INTERVAL_S = 5
DNS_TTL_S = 5              # CoreDNS's kubernetes plugin answers with a 5 s TTL by default
PRESTOP_S = RESOLVE_INTERVAL_S + DNS_TTL_S + 5
SHUTDOWN_TIMEOUT_S = 20
INGRESS_NAMESPACE = "ingress-nginx"
MONITORING_NAMESPACE = "monitoring"
# The cluster's pod CIDR: the gateway believes X-Forwarded-For from peers in it. Only the
# ingress controller may reach the gateway (NetworkPolicy), so that peer is the only proxy.
POD_CIDR = "10.0.0.0/8"
BACKING_PORTS = {"postgres": 5432, "pgbouncer": 6432, "redis": 6379, "rabbitmq": 5672}

PROCESSES = [
    # name, module, env prefix, port, min replicas, max replicas, db schema
    ("gateway", "gateway", "GATEWAY", 8080, 2, 10, None),
    ("auth-service", "auth_service", "AUTH", 8081, 2, 10, "auth"),
    ("tenant-service", "tenant_service", "TENANT", 8082, 2, 6, "tenant"),
    ("ticket-service", "ticket_service", "TICKET", 8083, 2, 10, "ticket"),
    ("audit-consumer", "tenant_service.audit", "AUDIT", 8084, 1, 4, "tenant"),
]
MIGRATIONS = [("auth", "auth_service"), ("tenant", "tenant_service"), ("ticket", "ticket_service")]
# Internal calls besides gateway -> service: auth asks tenant (memberships), every process
# fetches the token keys from auth.
CALLS = {"auth-service": ["tenant-service"], "tenant-service": ["auth-service"],
         "ticket-service": ["auth-service"], "audit-consumer": ["auth-service"],
         "gateway": ["auth-service", "tenant-service", "ticket-service"]}
# Which backing servers each process uses.
BACKING = {"gateway": ["redis"], "auth-service": ["postgres", "pgbouncer", "redis", "rabbitmq"],
           "tenant-service": ["postgres", "pgbouncer", "rabbitmq"],
           "ticket-service": ["postgres", "pgbouncer", "rabbitmq"],
           "audit-consumer": ["postgres", "pgbouncer", "rabbitmq"]}
# Secret settings beyond the common ones, per process: (env variable, secret key).
JOB_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
JOB_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def release_suffix() -> str:
    return RELEASE.replace(".", "-").replace("+", "-").lower()


def labels(name: str) -> dict:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "saas-backend"}


def secret_env(name: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": key}}}


def config_map() -> dict:
    data = {
        "REDIS_URL": "redis://redis:6379/0",
        "JWKS_URL": "http://auth-service:8081/.well-known/jwks.json",
        "JWT_ISSUER": "saas-auth",
        "JWT_AUDIENCE": "saas-api",
        "LOG_LEVEL": "INFO",
        "ENVIRONMENT": "production",  # the processes refuse development or short secrets
        "AUTH_TENANT_URL": "http://tenant-service:8082",
        "TENANT_AUTH_URL": "http://auth-service:8081",
        "AUTH_SIGNING_KEYS_DIR": "/var/run/saas/signing-keys",
        "GATEWAY_AUTH_UPSTREAMS": "http://auth-service:8081",
        "GATEWAY_TENANT_UPSTREAMS": "http://tenant-service:8082",
        "GATEWAY_TICKET_UPSTREAMS": "http://ticket-service:8083",
        "GATEWAY_RESOLVE_INTERVAL_S": str(RESOLVE_INTERVAL_S),
        "GATEWAY_TRUSTED_PROXIES": POD_CIDR,
        "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
    }
    for _, _, prefix, _, _, _, _ in PROCESSES:
        data[f"{prefix}_HOST"] = "0.0.0.0"
        data[f"{prefix}_WORKERS"] = "2"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "saas-config", "namespace": NAMESPACE, "labels": labels("saas-config")},
            "data": data}


# A separate secret per purpose: each cursor signer has its own key in the Secret.
CURSOR_SECRETS = {"AUTH": "auth-cursor-secret", "TENANT": "tenant-cursor-secret", "TICKET": "ticket-cursor-secret"}
# The processes whose mailer sends emails (shared.mail).
MAIL_SENDERS = {"AUTH", "TENANT"}


def common_env(name: str, prefix: str, schema: str | None) -> list[dict]:
    env = [secret_env("AMQP_URL", "amqp-url"), secret_env("INTERNAL_API_TOKEN", "internal-api-token")]
    if prefix in CURSOR_SECRETS:
        env.append(secret_env(f"{prefix}_CURSOR_SECRET", CURSOR_SECRETS[prefix]))
    if prefix in MAIL_SENDERS:  # SMTP_URL may carry the SMTP credentials
        env.append(secret_env("SMTP_URL", "smtp-url"))
    if schema:
        env.append(secret_env(f"{prefix}_DATABASE_URL", f"{schema}-app-database-url"))
    return env


def deployment(name, module, prefix, port, replicas, schema) -> dict:
    probe = lambda path, period: {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period,  # noqa: E731
                                  "timeoutSeconds": 2, "failureThreshold": 3}
    container = {
        "name": name, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", module, "serve"],
        "ports": [{"name": "http", "containerPort": port}],
        "envFrom": [{"configMapRef": {"name": "saas-config"}}],
        "env": common_env(name, prefix, schema),
        "readinessProbe": probe("/health/ready", 5),
        "livenessProbe": probe("/health/live", 10),
        "startupProbe": {**probe("/health/live", 2), "failureThreshold": 30},
        # A CPU limit on auth-service: argon2's threads are sized from it (shared.cpu).
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                      "limits": {"memory": "512Mi", **({"cpu": "2"} if name == "auth-service" else {})}},
        # Endpoints drop the pod at once; it keeps serving until every gateway has re-resolved.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_S)]}}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes = [{"name": "tmp", "emptyDir": {}}]
    if name == "auth-service":
        container["volumeMounts"].append({"name": "signing-keys", "mountPath": "/var/run/saas/signing-keys",
                                          "readOnly": True})
        volumes.append({"name": "signing-keys", "secret": {"secretName": SIGNING_KEYS_SECRET}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"terminationGracePeriodSeconds": PRESTOP_S + SHUTDOWN_TIMEOUT_S + 5,
                         "automountServiceAccountToken": False,
                         "containers": [container], "volumes": volumes},
            },
        },
    }


def service(name, port) -> dict:
    spec = {"selector": labels(name), "ports": [{"name": "http", "port": port, "targetPort": "http"}],
            "type": "ClusterIP"}
    if name != "gateway":
        # Headless: the name resolves to the ready pods, one gateway replica entry per pod.
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)}, "spec": spec}


def pdb(name) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(name)}}}


def _ns(name: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def network_policies() -> list[dict]:
    """Default deny; the ingress controller reaches the gateway, the gateway the services,
    the services each other only for the calls they make, and the backing servers by port."""
    def policy(name, spec):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)}, "spec": spec}
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    out = [policy("default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
           policy("allow-dns", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [dns]})]
    ports = {name: port for name, _, _, port, _, _, _ in PROCESSES}
    for name, _, _, port, _, _, _ in PROCESSES:
        callers = [c for c, targets in CALLS.items() if name in targets]
        sources = [{"podSelector": {"matchLabels": labels(c)}} for c in callers]
        if name == "gateway":
            sources.append(_ns(INGRESS_NAMESPACE))
        ingress = [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}] if sources else []
        ingress.append({"from": [_ns(MONITORING_NAMESPACE)], "ports": [{"protocol": "TCP", "port": port}]})
        egress = [{"to": [{"podSelector": {"matchLabels": labels(t)}}],
                   "ports": [{"protocol": "TCP", "port": ports[t]}]} for t in CALLS.get(name, [])]
        # The backing servers may live outside the cluster: restricted by port (narrow with an
        # ipBlock or podSelector for your servers).
        egress.append({"ports": [{"protocol": "TCP", "port": BACKING_PORTS[b]} for b in BACKING[name]]})
        out.append(policy(name, {"podSelector": {"matchLabels": labels(name)},
                                 "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}))
    jobs = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "job"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": [{"protocol": "TCP", "port": BACKING_PORTS[b]} for b in ("postgres", "rabbitmq")]}]}
    out.append(policy("jobs", jobs))
    return out


def ingress() -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "gateway", "namespace": NAMESPACE, "labels": labels("gateway"),
                         "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}},
            "spec": {"ingressClassName": "nginx",
                     "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
                     "rules": [{"host": "api.example.com", "http": {"paths": [{
                         "path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "gateway", "port": {"number": 8080}}}}]}}]}}


def secret_keys() -> list[str]:
    keys = ["amqp-url", "internal-api-token", "admin-database-url"]
    for schema, _ in MIGRATIONS:
        keys += [f"{schema}-app-database-url", f"{schema}-owner-database-url",
                 f"{schema}-app-db-password", f"{schema}-owner-db-password"]
    keys += list(CURSOR_SECRETS.values())
    keys.append("smtp-url")
    return keys


def secret_templates() -> list[dict]:
    """Every key the manifests read; fill and apply once (values never live in this repo)."""
    meta = lambda name: {"name": name, "namespace": NAMESPACE, "labels": labels(name)}  # noqa: E731
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": meta(SECRET), "type": "Opaque",
             "stringData": {key: "REPLACE-ME" for key in secret_keys()}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": meta(SIGNING_KEYS_SECRET), "type": "Opaque",
             "stringData": {
                 "KID.pem": "REPLACE-ME: one PEM per key, named <kid>.pem (python -m auth_service keys ensure)"}}]


def hpa(name, low, high) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


def job_labels(name: str) -> dict:
    return {**labels(name), "app.kubernetes.io/component": "job"}


def migration_job(schema, module) -> dict:
    # One Job per release: a Job's pod template cannot change, and the name says which image
    # migrated the schema. The previous release's Job is cleaned up by its TTL.
    name = f"migrate-{schema}-{release_suffix()}"
    declare = [module] + (["tenant_service.audit"] if module == "tenant_service" else [])
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE,
                         "labels": {**job_labels(name), "app.kubernetes.io/version": RELEASE}},
            "spec": {"backoffLimit": 3, "ttlSecondsAfterFinished": 86400, "activeDeadlineSeconds": 1800, "template": {
                "metadata": {"labels": job_labels(name)},
                "spec": {"restartPolicy": "OnFailure", "containers": [{
                    # Schema first, then the broker topology (every consumer queue of the schema's processes).
                    "name": "migrate", "image": IMAGE, "command": ["sh", "-c", " && ".join(
                        [f"python -m {module} migrate up"] + [f"python -m {m} declare-queues" for m in declare])],
                    "envFrom": [{"configMapRef": {"name": "saas-config"}}],
                    "env": [secret_env(f"{module.split('_')[0].upper()}_MIGRATE_DATABASE_URL",
                                       f"{schema}-owner-database-url"),
                            secret_env("AMQP_URL", "amqp-url")],
                    "resources": JOB_RESOURCES, "securityContext": JOB_SECURITY}]}}}}


def db_setup_job() -> dict:
    name = "db-setup"
    env = [secret_env("ADMIN_DATABASE_URL", "admin-database-url")]
    for schema, _ in MIGRATIONS:
        for kind in ("app", "owner"):
            env.append(secret_env(f"{schema.upper()}_{kind.upper()}_DB_PASSWORD", f"{schema}-{kind}-db-password"))
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": job_labels(name)},
            "spec": {"backoffLimit": 3, "ttlSecondsAfterFinished": 86400, "activeDeadlineSeconds": 600,
                     "template": {"metadata": {"labels": job_labels(name)}, "spec": {
                "restartPolicy": "OnFailure", "containers": [{
                    "name": "db-setup", "image": IMAGE,
                    "command": ["python", "-m", "shared.dbsetup", "--database", "saas"], "env": env,
                    "resources": JOB_RESOURCES, "securityContext": JOB_SECURITY}]}}}}


def documents() -> dict[str, list[dict]]:
    files = {"00-config.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                                config_map()],
             "05-network-policies.yaml": network_policies(),
             "10-jobs.yaml": [db_setup_job()] + [migration_job(s, m) for s, m in MIGRATIONS],
             "30-ingress.yaml": [ingress()],
             "templates/saas-secrets.yaml": secret_templates()}
    for name, module, prefix, port, low, high, schema in PROCESSES:
        files[f"20-{name}.yaml"] = [deployment(name, module, prefix, port, low, schema), service(name, port),
                                    hpa(name, low, high), pdb(name)]
    return files


def render() -> dict[str, str]:
    header = "# Generated by deploy/k8s/render.py; edit that script, not this file.\n"
    return {fname: header + yaml.safe_dump_all(docs, sort_keys=False) for fname, docs in documents().items()}


if __name__ == "__main__":
    for fname, text in render().items():
        (HERE / fname).parent.mkdir(exist_ok=True)
        (HERE / fname).write_text(text)
        print(f"wrote deploy/k8s/{fname}")
