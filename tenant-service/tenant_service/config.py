from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.mail import MailSettings


class Settings(MailSettings):
    model_config = SettingsConfigDict(env_prefix="TENANT_", extra="ignore", populate_by_name=True)

    service_name: str = "tenant-service"
    port: int = 8082
    db_schema: str = "tenant"
    database_url: str = "postgresql://tenant_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://tenant_owner@127.0.0.1:5432/saas"

    # Signs the opaque list cursors (a forged or edited cursor is a 422, never a query on crafted
    # keys); rotating it invalidates cursors in flight.
    cursor_secret: SecretStr = Field(SecretStr("dev-tenant-cursor-secret-change-me"),
                                     description="HMAC key of the list cursors (secret).")
    auth_url: str = Field("http://127.0.0.1:8081", description="auth-service base URL for internal calls (the "
                                                             "profile of a user whose user.registered is still "
                                                             "in flight, when accepting an invitation).")
    auth_timeout_s: float = Field(2.0, description="Timeout of each call to auth-service.")
    invitation_ttl_s: int = Field(7 * 24 * 3600, description="Lifetime of an invitation token in seconds.")
    users_consumer_enabled: bool = Field(True, description="Consume user.registered to keep user profiles "
                                                           "(email, name) in step with auth-service.")
    users_consumer_group: str = Field("tenant-service.users", description="Queue (consumer group) of the "
                                                                          "user.registered consumer.")
