from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TENANT_", extra="ignore", populate_by_name=True)

    service_name: str = "tenant-service"
    port: int = 8082
    db_schema: str = "tenant"
    database_url: str = "postgresql://tenant_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://tenant_owner@127.0.0.1:5432/saas"

    # Signs the opaque list cursors (a forged cursor is a 422, never a query on crafted keys).
    cursor_secret: SecretStr = SecretStr("dev-tenant-cursor-secret-change-me")
    invitation_ttl_s: int = 7 * 24 * 3600
    # Keeps user profiles (email, name) in step with auth-service's user.registered events.
    users_consumer_enabled: bool = True
    users_consumer_group: str = "tenant-service.users"
