from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKET_", extra="ignore", populate_by_name=True)

    service_name: str = "ticket-service"
    port: int = 8083
    db_schema: str = "ticket"
    database_url: str = "postgresql://ticket_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://ticket_owner@127.0.0.1:5432/saas"

    # Rotating the cursor secret invalidates cursors in flight (clients then get 422 and start
    # from the first page).
    cursor_secret: SecretStr = Field(SecretStr("dev-ticket-cursor-secret-change-me"),
                                     description="HMAC key of the list cursors (secret; set in production).")
    idempotency_ttl_s: int = Field(
        24 * 3600, description="How long an Idempotency-Key of POST /v1/tickets is remembered.")
    create_batch_max: int = Field(
        64, ge=1, description="Most creations of one organization written together in one statement and commit "
                              "(those that arrive while its previous batch is written); 1 writes each alone.")
    consumers_enabled: bool = Field(True, description="Run the membership read-model consumer in this process.")
    membership_consumer_group: str = Field(
        "ticket-service.memberships",
        description="Queue of the consumer keeping the membership read model "
                    "(assignable agents, deleted organizations).")
