"""Settings from the environment (`BLOHKO_*`)."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Light modules only: a stdio server reads its settings before anything else (cold start).
from storage.defaults import (
    DEFAULT_MAX_OVERFLOW,
    DEFAULT_POOL_SIZE,
    DEFAULT_WRITE_QUEUE_LIMIT,
    DEFAULT_WRITE_QUEUE_TIMEOUT,
    default_database_url,
    normalize_database_url,
)
from tools.core.ratelimit import DEFAULT_PER_MINUTE

__all__ = ["Settings", "machine_cores", "worker_count"]


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and `taskset` narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(value: object) -> int:
    """`--workers` / `BLOHKO_WORKERS` as a number of processes: a positive whole number, or `auto`
    for the machine's cores. ValueError naming what was given otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return machine_cores()
    try:
        count = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(
            f"{value!r} is not a number of processes: give a whole number from 1, or auto"
        ) from None
    if count < 1:
        raise ValueError(f"{count} is not a number of processes: give a whole number from 1, or auto")
    return count


class Settings(BaseSettings):
    # An empty variable counts as unset: an MCP bundle passes `BLOHKO_DATABASE_URL=""` when its
    # optional database URL is left blank, which must mean the default store.
    model_config = SettingsConfigDict(env_prefix="BLOHKO_", extra="ignore", env_ignore_empty=True)

    database_url: str = Field(default_factory=default_database_url)
    """`sqlite:///path` (default: `blohko.db` in the user's data directory) or
    `postgresql+asyncpg://...`; plain `sqlite:///path` and `postgresql://...` get their async driver."""

    api_key: SecretStr | None = None
    """The key `blohko serve` uses over stdio."""

    host: str = "127.0.0.1"
    """The address `blohko serve --http` and `blohko demo` listen on (`--host` overrides it)."""

    port: int = Field(default=8000, ge=0, le=65535)
    """The port `blohko serve --http` and `blohko demo` listen on (`--port` overrides it)."""

    workers: int = 1
    """Processes `blohko serve --http` serves with (`--workers` overrides it): a whole number, or
    `auto` for the machine's cores. They share one listening socket under a supervisor that replaces
    one that dies; 1 (the default) serves in the one process."""

    drain_seconds: float = Field(default=30, gt=0, le=3600)
    """On SIGTERM or Ctrl+C, how long `blohko serve --http` lets requests in flight finish before it
    cuts them off; then webhook deliveries in flight are recorded (at most the delivery timeout)."""

    database_pool_size: int = Field(default=DEFAULT_POOL_SIZE, ge=1, le=1000)
    """PostgreSQL: connections each server process keeps open to the database."""

    database_max_overflow: int = Field(default=DEFAULT_MAX_OVERFLOW, ge=0, le=1000)
    """PostgreSQL: connections a process may open beyond the pool under a burst, closed when
    returned. One process uses at most `pool size + overflow`: with `--workers N`, N times that."""

    allowed_hosts: list[str] = Field(default_factory=list)
    """Extra `Host` header values accepted over HTTP (DNS-rebinding protection), a JSON list, e.g.
    `["api.example.com"]`: a name accepts any port, `name:port` that port only. Loopback names, the
    bound address and the public URL's host are always accepted; anything else gets 421."""

    public_url: str | None = None
    """The URL clients reach this server at, e.g. `https://school.example.com` behind a TLS proxy:
    the OAuth issuer, and `<public_url>/mcp` the resource its tokens are for; every URL the dashboard
    shows is built from it (never from the request's `Host`). An https URL makes every cookie
    `Secure`, whatever the hop from the proxy says. OAuth needs https (or a loopback address);
    default `http://127.0.0.1:<port>`, for one machine (`effective_public_url`)."""

    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    """The proxies trusted for `X-Forwarded-Proto` and `X-Forwarded-For` (the request's scheme and
    client address, which the per-address sign-in throttle counts), a JSON list of addresses or
    networks, e.g. `["10.0.0.5"]` or `["10.0.0.0/24"]`; uvicorn's `forwarded_allow_ips`. Default:
    loopback only, for a proxy on the same machine. Headers from any other address are ignored.
    `["*"]` trusts every address: only when nothing but the proxy can reach the server."""

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_count(cls, value: object) -> int:
        return worker_count(value)

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_parse(cls, hosts: list[str]) -> list[str]:
        from server.hosts import parse_host

        for host in hosts:
            if parse_host(host) is None:
                raise ValueError(
                    f"BLOHKO_ALLOWED_HOSTS: {host!r} is not a host name or IP literal with an optional :port"
                )
        return hosts

    @field_validator("public_url")
    @classmethod
    def _public_url_is_an_origin(cls, url: str | None) -> str | None:
        from server.hosts import parse_host

        if url is None:
            return None
        parts = urlsplit(url)
        if (
            parts.scheme not in ("http", "https")
            or parse_host(parts.netloc) is None
            or parts.path.strip("/")
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                f"BLOHKO_PUBLIC_URL: {url!r} must be http(s)://host[:port], without user, path, query or fragment"
            )
        return url.rstrip("/")

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            if proxy == "*":
                continue
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f'BLOHKO_FORWARDED_ALLOW_IPS: {proxy!r} is not an IP address or network (or "*")'
                ) from None
        return proxies

    def effective_public_url(self) -> str:
        """`public_url`, or `http://127.0.0.1:<port>` (the bound address when it is a specific one): the
        base of every URL shown to people and of OAuth's issuer. No trailing slash."""
        if self.public_url:
            return self.public_url
        host = self.host
        if host in ("0.0.0.0", "::", "localhost", "::1", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def cookies_always_secure(self) -> bool:
        """Every cookie is `Secure` when clients reach the server over https (the public URL says so)."""
        return self.effective_public_url().startswith("https://")

    oauth_allow_loopback_metadata: bool = False
    """Accept OAuth client ID metadata documents on loopback addresses (tests, local development).
    Off in production: a client id URL must be https on a public address."""

    oauth_registrations_per_address_per_hour: int = Field(default=20, ge=1)
    """OAuth Dynamic Client Registrations (`POST /register`) one client address may make in any
    hour; past it, 429 with Retry-After. A real app registers once per connection."""

    oauth_registrations_per_hour: int = Field(default=100, ge=1)
    """OAuth Dynamic Client Registrations all addresses together may make in any hour; past it, 429.
    With the 4 KiB metadata bound this caps what registrations can add to the database in an hour
    (under 0.5 MB). Clients known by a client ID metadata document do not register."""

    oauth_unused_registration_hours: float = Field(default=24, gt=0, le=24 * 365)
    """A client registered by Dynamic Client Registration that no owner has consented to this long
    after registering is deleted (when a later registration arrives); the app registers again."""

    event_retention_days: float = Field(default=30, gt=0, le=3650)
    """How long events stay in the feed (and can be delivered); older ones are pruned."""

    delivery_retention_days: float = Field(default=30, gt=0, le=3650)
    """How long finished webhook delivery records are kept (a delivery goes with its event at the
    latest); older ones are pruned as events are."""

    audit_retention_days: float = Field(default=365, gt=0, le=3650)
    """How long audit records are kept; older ones are pruned as events are."""

    idempotency_ttl_hours: float = Field(default=24, gt=0, le=24 * 30)
    """How long a create's result stays replayable under its idempotency key; expired records
    are pruned as new keys are claimed."""

    webhooks_allow_loopback: bool = False
    """Accept webhook endpoints on loopback addresses (local development, tests). Off: only public
    addresses are reached, checked at creation and again at each delivery."""

    webhook_retry_schedule: list[float] = Field(
        default_factory=lambda: [5, 300, 1800, 7200, 18000, 36000, 36000]
    )
    """Seconds to wait before each retry of a failed delivery (after the first attempt): 5 s, 5 min,
    30 min, 2 h, 5 h, 10 h, 10 h, about 27.6 hours in all; then the delivery is marked failed."""

    webhook_timeout_seconds: float = Field(default=10, gt=0, le=60)
    """How long one delivery may take before it counts as failed."""

    webhook_disable_after_hours: float = Field(default=72, gt=0)
    """An endpoint whose deliveries keep failing this long is disabled (with the reason)."""

    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often a delivery worker looks for due deliveries. A serving process's own writes wake its
    worker at once; this is how long a delivery queued by another process (or a retry) may wait."""

    webhook_lease_seconds: float = Field(default=60, gt=0, le=3600)
    """How long a worker holds a delivery it is sending; a worker that dies leaves it to expire.
    Longer than the delivery timeout (checked), so a slow answer is never sent twice at once."""

    session_ttl_hours: float = Field(default=12, gt=0, le=24 * 30)
    """How long a producer session (API key management, `POST /api/v1/auth/login`) lasts."""

    log_level: str = "INFO"

    mcpb_path: Path | None = None
    """The MCP bundle the dashboard offers for download (default: `blohko.mcpb` in the working directory, if packed)."""

    write_queue_limit: int = Field(default=DEFAULT_WRITE_QUEUE_LIMIT, ge=1)
    """SQLite: writes that may wait their turn at once; past it a write gets `busy` (503) at once."""

    write_queue_timeout_seconds: float = Field(default=DEFAULT_WRITE_QUEUE_TIMEOUT, gt=0, le=600)
    """SQLite: how long a write may wait its turn before it gets `busy` (503 with Retry-After)."""

    login_failures_per_account: int = Field(default=5, ge=1)
    """Failed sign-ins one owner email may have in the window before sign-in answers 429."""

    login_failures_per_address: int = Field(default=50, ge=1)
    """Failed sign-ins one client address may have in the window before sign-in answers 429."""

    login_failure_window_minutes: float = Field(default=15, gt=0, le=24 * 60)
    """The login throttle's sliding window."""

    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    """Password hashes (64 MiB of memory each) that may run at once; more wait their turn."""

    rate_limit_per_minute: int = Field(default=DEFAULT_PER_MINUTE, ge=0)
    """Operations one API key may run per minute, over MCP and REST together; 0 turns the limit off."""

    @field_validator("database_url")
    @classmethod
    def _with_async_driver(cls, url: str) -> str:
        return normalize_database_url(url)

    @model_validator(mode="after")
    def _lease_outlasts_a_delivery(self) -> Settings:
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                f"BLOHKO_WEBHOOK_LEASE_SECONDS ({self.webhook_lease_seconds:g}) must be longer than "
                f"BLOHKO_WEBHOOK_TIMEOUT_SECONDS ({self.webhook_timeout_seconds:g}): a delivery still being "
                "sent when its lease ran out would be sent again at the same time"
            )
        return self

    def store_options(self) -> dict[str, Any]:
        """The arguments of `storage.engine.open_store` for this configuration."""
        return {
            "url": self.database_url,
            "write_queue_limit": self.write_queue_limit,
            "write_queue_timeout": self.write_queue_timeout_seconds,
            "pool_size": self.database_pool_size,
            "max_overflow": self.database_max_overflow,
        }
