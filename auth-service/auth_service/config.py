from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from shared.mail import MailSettings

# OWASP Password Storage Cheat Sheet, argon2id minimum: m=19 MiB, t=2, p=1.
OWASP_ARGON2_MEMORY_KIB = 19456
OWASP_ARGON2_TIME_COST = 2


class Settings(MailSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", populate_by_name=True)

    service_name: str = "auth-service"
    port: int = 8081
    db_schema: str = "auth"
    database_url: str = "postgresql://auth_app@127.0.0.1:5432/saas"
    migrate_database_url: str = "postgresql://auth_owner@127.0.0.1:5432/saas"

    # Password hashing (argon2id). Lower values are refused unless argon2_allow_weak is set
    # (test suites only), so a typo cannot silently weaken every stored hash.
    argon2_time_cost: int = Field(OWASP_ARGON2_TIME_COST, description="argon2id iterations (OWASP minimum 2).")
    argon2_memory_kib: int = Field(OWASP_ARGON2_MEMORY_KIB,
                                   description="argon2id memory in KiB (OWASP minimum 19456 = 19 MiB).")
    argon2_parallelism: int = Field(1, description="argon2id lanes.")
    argon2_allow_weak: bool = Field(False, description="Accept argon2 parameters below the OWASP minimum "
                                                       "(test suites only).")
    argon2_threads: int = Field(0, description="Threads hashing off the event loop per process; 0 = the CPUs "
                                               "the container may use (cgroup CPU limit) / workers.")

    signing_keys_dir: str = Field(".keys/auth", description="Directory of Ed25519 private keys named "
                                                            "`<kid>.pem` (relative to the working directory).")
    signing_keys: SecretStr = Field(SecretStr(""), description="Ed25519 private key PEM(s) from the environment "
                                                               "(kid = RFC 7638 thumbprint).")
    active_kid: str = Field("", description="The kid that signs; empty: the newest key.")
    jwks_max_age_s: int = Field(300, description="Cache-Control max-age of /.well-known/jwks.json.")

    access_token_ttl_s: int = Field(900, description="Access-token lifetime.")
    refresh_grace_s: float = Field(10.0, description="Window in which a just-spent refresh token answers with "
                                                     "the same successor.")
    session_absolute_ttl_s: int = Field(30 * 24 * 3600, description="Absolute lifetime of a session "
                                                                    "(its refresh-token chain).")
    session_idle_ttl_s: int = Field(30 * 24 * 3600, description="A session unused this long ends.")
    membership_cache_ttl_s: int = Field(300, ge=0, description=(
        "How long a sign-in may use the memberships tenant-service gave an earlier sign-in of the same user "
        "instead of asking again (while no revocation mark made them stale; auth_service/tenants/cache.py). "
        "At most the access-token lifetime, whatever is set; 0: always ask."))

    cursor_secret: SecretStr = Field(SecretStr("dev-auth-cursor-secret-change-me"),
                                     description="HMAC key of the list cursors (secret; its own value, "
                                                 "not INTERNAL_API_TOKEN's).")

    tenant_url: str = Field("http://127.0.0.1:8082", description="tenant-service base URL for internal calls.")
    tenant_timeout_s: float = Field(2.0, description="Timeout of each call to tenant-service.")

    login_max_failures_per_account_address: int = Field(5, description=(
        "Failed logins per account from one client address per window before 429 (for that address)."))
    login_max_failures_per_account: int = Field(100, description=(
        "Failed logins per account from all addresses together per window before 429 for everyone "
        "(much higher than the per-address limit, so strangers cannot lock an owner out)."))
    login_max_failures_per_ip: int = Field(50, description="Failed logins per client address per window before 429.")
    login_failure_window_s: int = Field(900, description="Failed-login counting window.")

    api_key_token_ttl_s: int = Field(300, description=(
        "Lifetime of the access token the gateway gets for an API key (it re-resolves the key before it "
        "expires; a deleted key is refused at once regardless, through the rv:ak mark)."))
    api_key_usage_interval_s: int = Field(60, description="`last_used_at` of an API key moves at most this often.")
    staff_access_ttl_s: int = Field(1800, description="Lifetime of platform staff's read-only access token.")
    revocation_check_interval_s: float = Field(0.5, description=(
        "How often Redis is checked for a lost revocation state (`rv:ready` missing), which is then "
        "rebuilt from PostgreSQL."))

    membership_consumer_group: str = Field("auth-service.memberships",
                                           description="Queue of the consumer that writes revocation marks.")
    membership_consumer_enabled: bool = Field(True, description="Run that consumer in this process.")

    # Email verification, password reset, security log (issue 13).
    email_verification_ttl_s: int = Field(24 * 3600, description="Lifetime of an email-verification link.")
    password_reset_ttl_s: int = Field(30 * 60, description="Lifetime of a password-reset link.")
    verification_requests_per_window: int = Field(3, description="Verification emails a user may ask for per "
                                                                 "account-email window before 429.")
    password_reset_requests_per_email: int = Field(3, description="Password-reset requests per email address "
                                                                  "per account-email window before 429.")
    password_reset_requests_per_ip: int = Field(30, description="Password-reset requests per client address "
                                                                "per account-email window before 429.")
    account_email_window_s: int = Field(3600, description="Counting window of those email request limits.")
    password_reset_request_floor_s: float = Field(
        0.3, description="Every password-reset request answers after at least this long, so an unknown email "
                         "takes as long as a known one.")
    security_event_retention_days: int = Field(90, description="Days the account security log is kept.")
    invitation_consumer_group: str = Field("auth-service.invitations",
                                           description="Queue of the consumer that marks an email verified when "
                                                       "an invitation sent to it is accepted.")
    invitation_consumer_enabled: bool = Field(True, description="Run that consumer in this process.")

    @model_validator(mode="after")
    def _argon2_floor(self) -> "Settings":
        if not self.argon2_allow_weak and (self.argon2_memory_kib < OWASP_ARGON2_MEMORY_KIB
                                           or self.argon2_time_cost < OWASP_ARGON2_TIME_COST
                                           or self.argon2_parallelism < 1):
            raise ValueError("argon2 parameters below the OWASP minimum (m=19456 KiB, t=2, p=1)")
        return self

    @property
    def membership_cache_ttl_ms(self) -> int:
        """A kept membership list is safe only while every revocation mark that can make it stale
        still exists, and marks live revocation_ttl_s (auth_service/tenants/cache.py)."""
        return min(self.membership_cache_ttl_s, self.access_token_ttl_s) * 1000

    @property
    def revocation_ttl_s(self) -> int:
        """How long a revocation key must live: until every token it can concern has expired."""
        return self.access_token_ttl_s + self.jwt_leeway_s
