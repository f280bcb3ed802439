"""The audit consumer: its own process (``python -m tenant_service.audit``) that records every
event of the bus in ``tenant.audit_event``, once per event id, chained per organization; plus
the audit commands (``verify``, ``retention``, ``purge``: tenant_service.audit.cli)."""
import sys

from shared.service import main

from .app import create_app
from .cli import COMMANDS, run
from .config import AuditSettings

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
    raise SystemExit(run(sys.argv[1:]))
# Migrations of the tenant schema (audit_event included) belong to tenant-service itself.
raise SystemExit(main(AuditSettings, create_app, app_path="tenant_service.audit.app:gunicorn_app",
                      migrations_dir=None))
