"""The `Host` header, parsed strictly, and the rule that says which hosts this server answers.

A `Host` value is a host name or an IP literal (IPv6 in brackets), then optionally `:` and a port
of digits, and nothing else (RFC 9110 section 7.2, RFC 3986 section 3.2.2): `localhost:80@evil.example`
(userinfo), `127.0.0.1:8000.evil.example` (a port with letters), `localhost.` (a trailing dot),
`::1` (IPv6 without brackets) are not hosts this server is, whatever they begin with. Names
compare case-insensitively and IPv6 literals by address (`[0:0::1]` is `[::1]`); everything else
must match exactly: no prefixes, no patterns.

Standard library only: `server.settings` checks `BLOHKO_ALLOWED_HOSTS` with it (cold start).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["HostPort", "HostRule", "parse_host"]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
_MAX_NAME = 253


@dataclass(frozen=True)
class HostPort:
    """A parsed `Host`: `name` lower-case (an IPv6 literal in its brackets, compressed); `port` None when absent."""

    name: str
    port: int | None = None

    def __str__(self) -> str:
        """The canonical `Host` value."""
        return self.name if self.port is None else f"{self.name}:{self.port}"


def parse_host(value: str | None) -> HostPort | None:
    """`value` (a `Host` header, or an entry of the allowed hosts) parsed; None when it is not
    exactly `name[:port]` or `[ipv6][:port]`."""
    if not value or not value.isascii():
        return None
    value = value.lower()
    if value.startswith("["):
        literal, bracket, rest = value[1:].partition("]")
        if not bracket or "%" in literal:  # a zone id (`%25eth0`) is never a Host a browser sends
            return None
        try:
            name = f"[{ipaddress.IPv6Address(literal).compressed}]"
        except ValueError:
            return None
    else:
        name, colon, port_text = value.partition(":")
        rest = f"{colon}{port_text}"
        if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
            return None
    if not rest:
        return HostPort(name)
    if not rest.startswith(":") or not _PORT.fullmatch(rest[1:]) or not 0 < int(rest[1:]) <= 65535:
        return None
    return HostPort(name, int(rest[1:]))


class HostRule:
    """The hosts this server answers: each allowed entry is a name (any port) or `name:port` (that
    port only). A `Host` header is allowed when it parses and matches an entry exactly."""

    def __init__(self, allowed: list[str]) -> None:
        self.any_port: set[str] = set()
        self.exact: set[HostPort] = set()
        for entry in allowed:
            parsed = parse_host(entry)
            if parsed is None:
                raise ValueError(f"{entry!r} is not a host name or IP literal with an optional :port")
            if parsed.port is None:
                self.any_port.add(parsed.name)
            else:
                self.exact.add(parsed)

    def match(self, header: str | None) -> HostPort | None:
        """`header` parsed, when it names an allowed host; else None."""
        host = parse_host(header)
        return host if host is not None and (host.name in self.any_port or host in self.exact) else None

    def allows(self, header: str | None) -> bool:
        return self.match(header) is not None
