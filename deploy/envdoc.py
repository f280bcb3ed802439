"""Print the README's environment-variable table from the settings classes themselves, so the
documentation cannot drift from the code (a test compares the README with this output).

    python deploy/envdoc.py            # print the table
    python deploy/envdoc.py --write    # put it into README.md between the env markers
"""
from __future__ import annotations

import importlib
import json

from pydantic import AliasChoices, SecretStr

from shared.config import BaseServiceSettings

PROCESSES = [
    ("gateway", "gateway.config"),
    ("auth-service", "auth_service.config"),
    ("tenant-service", "tenant_service.config"),
    ("audit consumer", "tenant_service.audit.config"),
    ("ticket-service", "ticket_service.config"),
]
# Variables read outside the settings classes (tooling, make run, tests).
TOOLING = [
    ("ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres", "db setup",
     "Superuser URL used by `shared.dbsetup` to create the database, roles and schemas."),
    ("DATABASE_NAME", "saas", "db setup, make", "Database `make run` sets up and migrates."),
    ("<SCHEMA>_APP_DB_PASSWORD, <SCHEMA>_OWNER_DB_PASSWORD", "(none)", "db setup",
     "Passwords given to the `<schema>_app` / `<schema>_owner` roles (schema: AUTH, TENANT, TICKET)."),
    ("<PREFIX>_REPLICAS", "1", "make run", "Replicas of a process under `make run` (replica i on port + 100·i)."),
    ("SEED", "1", "make run", "Seed the demo organization once the stack is ready."),
    ("SEED_GATEWAY_URL, SEED_PASSWORD, SEED_ORG_NAME", "http://127.0.0.1:8080, demo-Password-2026, Demo Co",
     "seed", "Where and what `deploy/seed.py` seeds."),
    ("TEST_DATABASE_NAME", "saas_test", "tests", "Database the test suite creates and migrates."),
    ("TEST_DB_PREFIX", "saas", "tests",
     "Prefix of every test database (`<prefix>_test`, `<prefix>_e2e`, `<prefix>_drills`)."),
    ("TEST_REDIS_HOSTPORT", "127.0.0.1:6379", "tests", "Redis server the tests use (databases 1 to 5)."),
    ("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "tests",
     "RabbitMQ the tests use (a vhost keeps suites apart)."),
    ("TEST_PORT_OFFSET", "0", "tests",
     "Added to the end-to-end, drill and benchmark stacks' ports (18080, 28080, 29080)."),
]


def env_name(cls, name: str, field) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return (cls.model_config.get("env_prefix") or "") + name.upper()


def show(value) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, (list, dict, tuple)):
        value = json.dumps(value)
    text = str(value)
    return f"`{text}`" if text else "(empty)"


_DB = {"database_url", "migrate_database_url", "db_schema", "db_pool_min", "db_pool_max", "db_statement_timeout_ms",
       "db_command_timeout_s", "db_connect_attempts"}
_EVENTS = {"amqp_url", "events_exchange", "relay_enabled", "relay_batch_size", "relay_poll_interval_s",
           "relay_publish_timeout_s", "outbox_retention_s", "consumer_prefetch", "consumer_max_retries",
           "consumer_retry_delay_ms", "consumer_retry_max_delay_ms", "inbox_retention_s", "relay_linger_ms",
           "relay_lazy_linger_ms", "consumer_batch_linger_ms"}
# Settings a process inherits but never reads (the gateway has no database and no events;
# the audit consumer publishes nothing).
# Only the audit consumer applies deliveries in batches (consumer_batch_linger_ms).
UNUSED = {"gateway": _DB | _EVENTS, "audit consumer": {"relay_enabled", "relay_batch_size", "relay_poll_interval_s",
                                                       "relay_publish_timeout_s", "relay_linger_ms",
                                                       "relay_lazy_linger_ms", "outbox_retention_s",
                                                       "migrate_database_url"},
          "auth-service": {"consumer_batch_linger_ms"}, "tenant-service": {"consumer_batch_linger_ms"},
          "ticket-service": {"consumer_batch_linger_ms"}}
PREFIXES = {"gateway": "GATEWAY", "auth-service": "AUTH", "tenant-service": "TENANT", "audit consumer": "AUDIT",
            "ticket-service": "TICKET"}


def settings_class(module: str):
    mod = importlib.import_module(module)
    # The class the module defines (it may import a settings mixin such as shared.mail.MailSettings).
    return next(v for v in vars(mod).values() if isinstance(v, type) and issubclass(v, BaseServiceSettings)
                and v.__module__ == mod.__name__)


def rows() -> list[tuple[str, str, str, str]]:
    """Unprefixed shared variables once; a prefixed setting every process has as one
    ``<PREFIX>_NAME`` row (defaults listed per process where they differ); the rest per process."""
    base_fields = BaseServiceSettings.model_fields
    shared: dict[str, list] = {}
    per_name: dict[str, dict[str, tuple[str, str]]] = {}
    for process, module in PROCESSES:
        cls = settings_class(module)
        for name, field in cls.model_fields.items():
            if name in UNUSED.get(process, ()):
                continue
            var = env_name(cls, name, field)
            # A subclass that only changes a default keeps the base field's meaning.
            desc = field.description or (base_fields[name].description if name in base_fields else "") or ""
            desc = desc.replace("|", "\\|")
            if isinstance(field.validation_alias, AliasChoices):
                entry = shared.setdefault(var, [show(field.default), desc, set()])
                entry[2].add(process)
            else:
                per_name.setdefault(name, {})[process] = (show(field.default), desc)
    out = [(var, d, "all" if len(procs) == len(PROCESSES) else ", ".join(p for p, _ in PROCESSES if p in procs), desc)
           for var, (d, desc, procs) in sorted(shared.items())]
    for name, by_process in per_name.items():
        desc = next((d for _, d in by_process.values() if d), "")
        if len(by_process) > 1 and name in base_fields:
            defaults = {d for d, _ in by_process.values()}
            default = defaults.pop() if len(defaults) == 1 else "; ".join(
                f"{PREFIXES[p]}: {d}" for p, (d, _) in by_process.items())
            procs = "all" if len(by_process) == len(PROCESSES) else ", ".join(by_process)
            out.append((f"<PREFIX>_{name.upper()}", default, procs, desc))
        else:
            for process, (default, own_desc) in by_process.items():
                out.append((f"{PREFIXES[process]}_{name.upper()}", default, process, own_desc))
    return out + [(v, show(d) if d != "(none)" else d, p, desc) for v, d, p, desc in TOOLING]


def table() -> str:
    lines = ["`<PREFIX>` is the process's own prefix: `GATEWAY`, `AUTH`, `TENANT`, `AUDIT` (the audit consumer) "
             "or `TICKET`.", "", "| variable | default | used by | meaning |", "|---|---|---|---|"]
    lines += [f"| `{var}` | {default} | {procs} | {desc} |" for var, default, procs, desc in rows()]
    return "\n".join(lines)


BEGIN, END = "<!-- env:begin -->", "<!-- env:end -->"


def readme_with_table(text: str) -> str:
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if "--write" in sys.argv:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        readme.write_text(readme_with_table(readme.read_text()))
    else:
        print(table())
