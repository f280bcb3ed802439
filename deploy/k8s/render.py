"""Render the Kubernetes manifests in this folder (run after changing a process or setting).

    python deploy/k8s/render.py          # rewrites deploy/k8s/*.yaml
A test checks the committed files equal this output and validate against the Kubernetes schemas.
"""
from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
IMAGE = "saas-backend:0.1.0"
NAMESPACE = "saas"
SECRET = "saas-secrets"  # created by the operator: see README "Kubernetes"

PROCESSES = [
    # name, module, env prefix, port, min replicas, max replicas, db schema
    ("gateway", "gateway", "GATEWAY", 8080, 2, 10, None),
    ("auth-service", "auth_service", "AUTH", 8081, 2, 10, "auth"),
    ("tenant-service", "tenant_service", "TENANT", 8082, 2, 6, "tenant"),
    ("ticket-service", "ticket_service", "TICKET", 8083, 2, 10, "ticket"),
    ("audit-consumer", "tenant_service.audit", "AUDIT", 8084, 1, 4, "tenant"),
]
MIGRATIONS = [("auth", "auth_service"), ("tenant", "tenant_service"), ("ticket", "ticket_service")]


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
    }
    for _, _, prefix, _, _, _, _ in PROCESSES:
        data[f"{prefix}_HOST"] = "0.0.0.0"
        data[f"{prefix}_WORKERS"] = "2"
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "saas-config", "namespace": NAMESPACE, "labels": labels("saas-config")},
            "data": data}


# A separate secret per purpose: each cursor signer has its own key in the Secret.
CURSOR_SECRETS = {"AUTH": "auth-cursor-secret", "TENANT": "tenant-cursor-secret", "TICKET": "ticket-cursor-secret"}


def common_env(prefix: str, schema: str | None) -> list[dict]:
    env = [secret_env("AMQP_URL", "amqp-url"), secret_env("INTERNAL_API_TOKEN", "internal-api-token")]
    if prefix in CURSOR_SECRETS:
        env.append(secret_env(f"{prefix}_CURSOR_SECRET", CURSOR_SECRETS[prefix]))
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
        "env": common_env(prefix, schema),
        "readinessProbe": probe("/health/ready", 5),
        "livenessProbe": probe("/health/live", 10),
        "startupProbe": {**probe("/health/live", 2), "failureThreshold": 30},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    volumes = [{"name": "tmp", "emptyDir": {}}]
    if name == "auth-service":
        container["volumeMounts"].append({"name": "signing-keys", "mountPath": "/var/run/saas/signing-keys",
                                          "readOnly": True})
        volumes.append({"name": "signing-keys", "secret": {"secretName": "saas-signing-keys"}})
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"terminationGracePeriodSeconds": 30, "containers": [container], "volumes": volumes},
            },
        },
    }


def service(name, port) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"selector": labels(name), "ports": [{"name": "http", "port": port, "targetPort": "http"}],
                     "type": "ClusterIP"}}


def hpa(name, low, high) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": low, "maxReplicas": high,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}


def migration_job(schema, module) -> dict:
    name = f"migrate-{schema}"
    declare = [module] + (["tenant_service.audit"] if module == "tenant_service" else [])
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"backoffLimit": 3, "ttlSecondsAfterFinished": 3600, "template": {
                "metadata": {"labels": labels(name)},
                "spec": {"restartPolicy": "OnFailure", "containers": [{
                    # Schema first, then the broker topology (every consumer queue of the schema's processes).
                    "name": "migrate", "image": IMAGE, "command": ["sh", "-c", " && ".join(
                        [f"python -m {module} migrate up"] + [f"python -m {m} declare-queues" for m in declare])],
                    "envFrom": [{"configMapRef": {"name": "saas-config"}}],
                    "env": [secret_env(f"{module.split('_')[0].upper()}_MIGRATE_DATABASE_URL",
                                       f"{schema}-owner-database-url"),
                            secret_env("AMQP_URL", "amqp-url")],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "allowPrivilegeEscalation": False}}]}}}}


def db_setup_job() -> dict:
    name = "db-setup"
    env = [secret_env("ADMIN_DATABASE_URL", "admin-database-url")]
    for schema, _ in MIGRATIONS:
        for kind in ("app", "owner"):
            env.append(secret_env(f"{schema.upper()}_{kind.upper()}_DB_PASSWORD", f"{schema}-{kind}-db-password"))
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels(name)},
            "spec": {"backoffLimit": 3, "template": {"metadata": {"labels": labels(name)}, "spec": {
                "restartPolicy": "OnFailure", "containers": [{
                    "name": "db-setup", "image": IMAGE,
                    "command": ["python", "-m", "shared.dbsetup", "--database", "saas"], "env": env,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                        "allowPrivilegeEscalation": False}}]}}}}


def documents() -> dict[str, list[dict]]:
    files = {"00-config.yaml": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
                                config_map()],
             "10-jobs.yaml": [db_setup_job()] + [migration_job(s, m) for s, m in MIGRATIONS]}
    for name, module, prefix, port, low, high, schema in PROCESSES:
        files[f"20-{name}.yaml"] = [deployment(name, module, prefix, port, low, schema), service(name, port),
                                    hpa(name, low, high)]
    return files


def render() -> dict[str, str]:
    header = "# Generated by deploy/k8s/render.py; edit that script, not this file.\n"
    return {fname: header + yaml.safe_dump_all(docs, sort_keys=False) for fname, docs in documents().items()}


if __name__ == "__main__":
    for fname, text in render().items():
        (HERE / fname).write_text(text)
        print(f"wrote deploy/k8s/{fname}")
