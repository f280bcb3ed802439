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
    consumer_batch_max: int = Field(64, description="Deliveries applied together in one transaction at most.")
    retention_days: int = Field(0, ge=0, description="Days an organization's audit events are kept when it has no "
                                                 "retention of its own (0: forever). Older events are removed "
                                                 "as a prefix of the hash chain, which stays verifiable.")
    retention_interval_s: float = Field(3600.0, gt=0, description="Seconds between two retention passes of the "
                                                                 "audit consumer.")
