from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKET_", extra="ignore", populate_by_name=True)

    service_name: str = "ticket-service"
    port: int = 8083
    db_schema: str = "ticket"
    database_url: str = "postgresql://ticket_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://ticket_owner@127.0.0.1:5432/saas"

    # Signs list cursors (HMAC) so a client cannot forge or edit one; rotating it invalidates
    # cursors in flight (clients then get 422 and start from the first page).
    cursor_secret: SecretStr = SecretStr("dev-ticket-cursor-secret-change-me")
    # How long an Idempotency-Key of POST /v1/tickets is remembered.
    idempotency_ttl_s: int = 24 * 3600
    # The membership read model (who may be assigned, which organizations are deleted).
    consumers_enabled: bool = True
    membership_consumer_group: str = "ticket-service.memberships"
