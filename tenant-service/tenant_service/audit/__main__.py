from shared.service import main

from .app import create_app
from .config import AuditSettings

# Migrations of the tenant schema (audit_event included) belong to tenant-service itself.
raise SystemExit(main(AuditSettings, create_app, app_path="tenant_service.audit.app:gunicorn_app",
                      migrations_dir=None))
