from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class AuditSettings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", populate_by_name=True)

    service_name: str = "audit-consumer"
    port: int = Field(8084, description="HTTP port (health and metrics only).")
    db_schema: str = "tenant"
    database_url: str = Field("postgresql://tenant_app@127.0.0.1:5432/saas",
                              description="PostgreSQL URL of the tenant schema's app role.")
    migrate_database_url: str = "postgresql://tenant_owner@127.0.0.1:5432/saas"
    # The audit consumer never writes events itself.
    relay_enabled: bool = False
    consumer_group: str = Field("audit", description="RabbitMQ consumer group (queue) of the audit log.")
    consumer_batch_max: int = Field(50, description="Deliveries applied together in one transaction at most.")
