from shared.service import main

from .app import MIGRATIONS, create_app
from .config import Settings

raise SystemExit(main(Settings, create_app, app_path="tenant_service.app:gunicorn_app", migrations_dir=MIGRATIONS))
