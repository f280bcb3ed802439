import sys

from shared.service import main

from .app import MIGRATIONS, create_app
from .config import Settings
from .consumers import invitations
from .consumers.memberships import BINDINGS

if len(sys.argv) > 1 and sys.argv[1] == "keys":
    from .keys.cli import cli
    raise SystemExit(cli(sys.argv[2:]))
if len(sys.argv) > 1 and sys.argv[1] == "staff":
    from .staff.cli import cli as staff_cli
    raise SystemExit(staff_cli(sys.argv[2:]))


def consumer_groups(settings: Settings) -> list[tuple[str, list[str]]]:
    # Named here rather than read from the app: building the app loads the signing keys, which
    # the deploy step declaring queues has no business holding.
    groups = [(settings.membership_consumer_group, BINDINGS)] if settings.membership_consumer_enabled else []
    if settings.invitation_consumer_enabled:
        groups.append((settings.invitation_consumer_group, invitations.BINDINGS))
    return groups


raise SystemExit(main(Settings, create_app, app_path="auth_service.app:gunicorn_app", migrations_dir=MIGRATIONS,
                      consumer_groups=consumer_groups))
