from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENANT_", extra="ignore", populate_by_name=True)

    service_name: str = "tenant-service"
    port: int = 8082
    db_schema: str = "tenant"
    database_url: str = "postgresql://tenant_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://tenant_owner@127.0.0.1:5432/saas"
