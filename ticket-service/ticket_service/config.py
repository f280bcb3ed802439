from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TICKET_", extra="ignore", populate_by_name=True)

    service_name: str = "ticket-service"
    port: int = 8083
    db_schema: str = "ticket"
    database_url: str = "postgresql://ticket_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://ticket_owner@127.0.0.1:5432/saas"
