from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", populate_by_name=True)

    service_name: str = "auth-service"
    port: int = 8081
    db_schema: str = "auth"
    database_url: str = "postgresql://auth_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://auth_owner@127.0.0.1:5432/saas"
