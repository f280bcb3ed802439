from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    service_name: str = "gateway"
    host: str = "127.0.0.1"
    port: int = 8080
    # Comma-separated base URLs of each upstream pool (replicas); a name that resolves to
    # several addresses (compose --scale) works too.
    auth_upstreams: str = "http://127.0.0.1:8081"
    tenant_upstreams: str = "http://127.0.0.1:8082"
    ticket_upstreams: str = "http://127.0.0.1:8083"
    connect_timeout_s: float = 1.0
    total_timeout_s: float = 10.0
