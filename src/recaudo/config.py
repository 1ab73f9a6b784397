"""Settings, read from RECAUDO_* environment variables (and a .env file when present)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECAUDO_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite:///{Path('var/recaudo.db').absolute()}"
    host: str = "127.0.0.1"
    port: int = 8000
    # Largest request body the admin API accepts (an uploaded debts file included).
    max_upload_bytes: int = 200 * 1024 * 1024
    # Where uploaded files are spooled before import, and rejected-row files are kept.
    data_dir: Path = Path("var")
    log_level: str = "INFO"
    demo_customers: int = 1000
    # Webhook deliveries give up (status `failed`) after this many attempts.
    webhook_max_attempts: int = 15
    # Let webhook and pass-through URLs reach loopback and private (RFC 1918, fc00::/7)
    # addresses: development and tests only. Link-local (cloud metadata) stays refused.
    webhook_allow_private_targets: bool = False
    # Fernet key(s) that encrypt delivery targets' passwords and keys (comma-separated: the
    # first encrypts, all decrypt, for rotation). Unset: generated once into
    # data_dir/secret.key (mode 0600). Losing it means re-entering every target's secret.
    secret_key: SecretStr | None = None
    # File deliveries (SFTP, e-mail, local) give up (status `failed`) after this many attempts.
    delivery_max_attempts: int = 10
    # Let SFTP and e-mail delivery targets reach loopback and private (RFC 1918, fc00::/7)
    # addresses: a self-hosted single-company install with an internal SFTP server or mail
    # relay. Keep it off when several companies share the install. Link-local (cloud
    # metadata) stays refused.
    delivery_allow_private_targets: bool = False
    # `recaudo serve` runs background jobs (webhook deliveries) in-process when true.
    jobs_enabled: bool = True
    # The card gateway card remittances are charged through (`recaudo card-gateway-sim`
    # serves a simulated one); unset: card remittances cannot be charged. The key is sent
    # as `Authorization: Bearer`.
    card_gateway_url: str | None = None
    card_gateway_key: SecretStr | None = None
    card_gateway_timeout_s: float = 30.0
    # The payment provider (PSE, cards) behind the hosted payment page and checkout tickets
    # (`recaudo checkout provider-sim` serves a simulated one); unset: pages say no
    # provider is available and tickets cannot be paid online.
    checkout_provider_url: str | None = None
    # Back office: the session cookie is sent over HTTPS only (Chromium and Firefox also send
    # Secure cookies to http://localhost and 127.0.0.1; turn off only behind plain HTTP).
    cookie_secure: bool = True
    # A back-office session ends after this long without a page, and in any case after this.
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    # Sign-in is refused for `sign_in_throttle_minutes` after this many failures for one
    # e-mail (since its last success) or from one address.
    sign_in_max_failures_per_email: int = 5
    sign_in_max_failures_per_ip: int = 20
    sign_in_throttle_minutes: int = 15


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
