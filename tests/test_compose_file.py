"""No Docker engine runs here, so the compose file's structure is checked instead: every
process, its health check, its start order, and that scaled replicas stay reachable."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PROCESSES = {"gateway": 8080, "auth-service": 8081, "tenant-service": 8082, "ticket-service": 8083,
             "audit-consumer": 8084}


def test_backing_services_have_health_checks():
    for name in ("postgres", "redis", "rabbitmq"):
        hc = SERVICES[name]["healthcheck"]
        assert hc["test"] and hc["interval"] and hc["retries"]


def test_every_process_has_a_readiness_health_check():
    for name, port in PROCESSES.items():
        test = " ".join(SERVICES[name]["healthcheck"]["test"])
        assert f":{port}/health/ready" in test, name


def test_a_migration_step_per_service_runs_before_it():
    for service, migrate in (("auth-service", "migrate-auth"), ("tenant-service", "migrate-tenant"),
                             ("ticket-service", "migrate-ticket"), ("audit-consumer", "migrate-tenant")):
        assert SERVICES[service]["depends_on"][migrate]["condition"] == "service_completed_successfully"
        command = " ".join(SERVICES[migrate]["command"])
        assert "migrate up" in command and "declare-queues" in command
        assert SERVICES[migrate]["depends_on"]["db-setup"]["condition"] == "service_completed_successfully"
    assert SERVICES["db-setup"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_processes_wait_for_healthy_dependencies():
    gw = SERVICES["gateway"]["depends_on"]
    for upstream in ("auth-service", "tenant-service", "ticket-service", "redis"):
        assert gw[upstream]["condition"] == "service_healthy"
    for name in ("auth-service", "tenant-service", "ticket-service", "audit-consumer"):
        assert SERVICES[name]["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


def test_scalable_services_can_run_several_replicas():
    # A fixed container name or published port would make --scale fail; the gateway reaches
    # replicas through the service name, which Docker's DNS resolves to every replica.
    for name in ("auth-service", "tenant-service", "ticket-service", "audit-consumer"):
        assert "container_name" not in SERVICES[name]
        assert "ports" not in SERVICES[name]
    env = SERVICES["gateway"]["environment"]
    assert env["GATEWAY_AUTH_UPSTREAMS"] == "http://auth-service:8081"
    assert env["GATEWAY_TENANT_UPSTREAMS"] == "http://tenant-service:8082"
    assert env["GATEWAY_TICKET_UPSTREAMS"] == "http://ticket-service:8083"


def test_services_bind_all_interfaces_and_use_their_own_roles():
    env = SERVICES["auth-service"]["environment"]
    for prefix in ("AUTH", "TENANT", "TICKET", "AUDIT", "GATEWAY"):
        assert env[f"{prefix}_HOST"] == "0.0.0.0"
    assert env["AUTH_DATABASE_URL"].startswith("postgresql://auth_app:")
    assert env["TICKET_DATABASE_URL"].startswith("postgresql://ticket_app:")
    assert env["TENANT_MIGRATE_DATABASE_URL"].startswith("postgresql://tenant_owner:")


def test_images_build_from_the_repo_dockerfile():
    assert (ROOT / "deploy" / "Dockerfile").exists()
    for name in PROCESSES:
        assert SERVICES[name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_secrets_are_required_and_production_is_the_default():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "dev-internal-token-change-me" not in text and "change-me" not in text
    env = SERVICES["auth-service"]["environment"]
    assert env["ENVIRONMENT"] == "${ENVIRONMENT:-production}"
    for name in ("INTERNAL_API_TOKEN", "AUTH_CURSOR_SECRET", "TENANT_CURSOR_SECRET", "TICKET_CURSOR_SECRET"):
        # `${NAME:?message}`: compose refuses to start while the secret is unset.
        assert env[name].startswith("${" + name + ":?"), (name, env[name])
    for name in PROCESSES:
        assert SERVICES[name]["environment"]["INTERNAL_API_TOKEN"] == env["INTERNAL_API_TOKEN"]
