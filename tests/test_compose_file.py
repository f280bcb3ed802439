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


def test_every_long_running_service_restarts():
    for name, svc in SERVICES.items():
        if "profiles" in svc and "seed" in svc["profiles"]:
            continue
        assert svc.get("restart") or COMPOSE["x-app"]["restart"], name
        one_shot = name in ("db-setup", "auth-keys") or name.startswith("migrate-")
        assert svc.get("restart", COMPOSE["x-app"]["restart"]) == ("no" if one_shot else "unless-stopped"), name


def test_gateway_scales_behind_one_published_port():
    assert "ports" not in SERVICES["gateway"] and "container_name" not in SERVICES["gateway"]
    published = {name for name, svc in SERVICES.items() if svc.get("ports")}
    # Besides the edge, only Mailpit's web UI (a local tool: the emails the stack sent), on 127.0.0.1.
    assert published == {"edge", "mailpit"}
    assert SERVICES["mailpit"]["ports"] == ["127.0.0.1:8025:8025"]
    edge_conf = (ROOT / SERVICES["edge"]["volumes"][0].split(":")[0]).read_text()
    assert "resolver 127.0.0.11" in edge_conf and "set $gateway http://gateway:8080" in edge_conf
    # The gateway believes X-Forwarded-For from the edge's fixed address only.
    edge_ip = SERVICES["edge"]["networks"]["default"]["ipv4_address"]
    assert f"{edge_ip}/32" in SERVICES["gateway"]["environment"]["GATEWAY_TRUSTED_PROXIES"]


def test_redis_persists_to_an_append_only_file():
    command = SERVICES["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in SERVICES["redis"]["volumes"])


def test_settings_are_passable_and_listed_in_env_example():
    import re
    text = (ROOT / "docker-compose.yml").read_text()
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = {line.split("=", 1)[0].lstrip("# ").strip() for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("# ") or re.match(r"^# [A-Z_]+=", line)}
    assert referenced <= example, referenced - example
    env = SERVICES["auth-service"]["environment"]
    for name in ("TENANT_CURSOR_SECRET", "TICKET_CURSOR_SECRET", "GATEWAY_CORS_ORIGINS", "GATEWAY_TRUSTED_PROXIES",
                 "AUTH_ACTIVE_KID"):
        assert name in env, name
    assert {"path": "app.env", "required": False} in COMPOSE["x-app"]["env_file"]


def test_pgbouncer_service_in_transaction_mode():
    svc = SERVICES["pgbouncer"]
    assert svc["profiles"] == ["pgbouncer"]
    entry = (ROOT / "deploy" / "compose" / "pgbouncer-entrypoint.sh").read_text()
    assert "pool_mode = transaction" in entry
    assert "apt-get install" in (ROOT / svc["build"]["dockerfile"]).read_text()
    env = SERVICES["ticket-service"]["environment"]
    assert "${DB_HOST:-postgres:5432}" in (ROOT / "docker-compose.yml").read_text()
    assert env["TICKET_DB_TRANSACTION_POOLING"] == "${DB_TRANSACTION_POOLING:-false}"
    assert "@postgres:5432/" in env["TICKET_MIGRATE_DATABASE_URL"]   # migrations never through the pooler


def test_dockerfile_installs_dependencies_before_sources_and_not_editable():
    lines = [ln.strip() for ln in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()]
    first_source = next(i for i, ln in enumerate(lines) if ln.startswith("COPY shared shared"))
    deps = next(i for i, ln in enumerate(lines) if "-r /tmp/deps.txt" in ln)
    assert deps < first_source
    assert all(not ln.startswith("COPY") or "pyproject.toml" in ln or "constraints" in ln
               for ln in lines[:deps])
    assert not any(" -e " in f" {ln} " for ln in lines if "pip install" in ln or ln.startswith("-e"))
    text = "\n".join(lines)
    for s in ("AUTH", "TENANT", "TICKET"):
        assert f"{s}_MIGRATIONS_DIR=" in text
