"""Settings from the environment (`BLOHKO_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.engine import default_database_url
from tools.ratelimit import DEFAULT_PER_MINUTE

__all__ = ["Settings"]


class Settings(BaseSettings):
    # An empty variable counts as unset: an MCP bundle passes `BLOHKO_DATABASE_URL=""` when its
    # optional database URL is left blank, which must mean the default store.
    model_config = SettingsConfigDict(env_prefix="BLOHKO_", extra="ignore", env_ignore_empty=True)

    database_url: str = Field(default_factory=default_database_url)
    """`sqlite+aiosqlite:///path` (default: a file in the user's data directory) or `postgresql+asyncpg://...`."""

    api_key: SecretStr | None = None
    """The key `blohko serve` uses over stdio."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra `Host` header values accepted over HTTP (DNS-rebinding protection), e.g. `api.example.com`."""

    session_ttl_hours: float = Field(default=12, gt=0, le=24 * 30)
    """How long a producer session (API key management, `POST /api/v1/auth/login`) lasts."""

    log_level: str = "INFO"

    rate_limit_per_minute: int = Field(default=DEFAULT_PER_MINUTE, ge=0)
    """Operations one API key may run per minute, over MCP and REST together; 0 turns the limit off."""
