from pydantic import SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.config import BaseServiceSettings

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_ARGON2_MEMORY_KIB = 19456
OWASP_ARGON2_TIME_COST = 2


class Settings(BaseServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", populate_by_name=True)

    service_name: str = "auth-service"
    port: int = 8081
    db_schema: str = "auth"
    database_url: str = "postgresql://auth_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://auth_owner@127.0.0.1:5432/saas"

    # Password hashing (argon2id). Lower values are refused unless argon2_allow_weak is set
    # (test suites only), so a typo cannot silently weaken every stored hash.
    argon2_time_cost: int = OWASP_ARGON2_TIME_COST
    argon2_memory_kib: int = OWASP_ARGON2_MEMORY_KIB
    argon2_parallelism: int = 1
    argon2_allow_weak: bool = False
    # Threads that run argon2 off the event loop; 0 means one per CPU core.
    argon2_threads: int = 0

    # Signing keys: PEM files named <kid>.pem in a directory, and/or PEMs in the environment.
    signing_keys_dir: str = ".keys/auth"
    signing_keys: SecretStr = SecretStr("")
    active_kid: str = ""
    jwks_max_age_s: int = 300

    access_token_ttl_s: int = 900
    refresh_grace_s: float = 10.0
    session_absolute_ttl_s: int = 30 * 24 * 3600
    session_idle_ttl_s: int = 30 * 24 * 3600

    tenant_url: str = "http://127.0.0.1:8082"
    tenant_timeout_s: float = 2.0

    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 50
    login_failure_window_s: int = 900

    membership_consumer_group: str = "auth-service.memberships"
    membership_consumer_enabled: bool = True

    @model_validator(mode="after")
    def _argon2_floor(self):
        if not self.argon2_allow_weak and (self.argon2_memory_kib < OWASP_ARGON2_MEMORY_KIB
                                           or self.argon2_time_cost < OWASP_ARGON2_TIME_COST
                                           or self.argon2_parallelism < 1):
            raise ValueError("argon2 parameters below the OWASP minimum (m=19456 KiB, t=2, p=1)")
        return self

    @property
    def revocation_ttl_s(self) -> int:
        """How long a revocation key must live: until every token it can concern has expired."""
        return self.access_token_ttl_s + self.jwt_leeway_s
