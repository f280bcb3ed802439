from shared.service import main

from .app import create_app
from .config import Settings

raise SystemExit(main(Settings, create_app, app_path="gateway.app:gunicorn_app", migrations_dir=None))
