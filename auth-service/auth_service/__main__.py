import sys

from shared.service import main

from .app import MIGRATIONS, create_app
from .config import Settings

if len(sys.argv) > 1 and sys.argv[1] == "keys":
    from .keys.cli import cli
    raise SystemExit(cli(sys.argv[2:]))

raise SystemExit(main(Settings, create_app, app_path="auth_service.app:gunicorn_app", migrations_dir=MIGRATIONS))
