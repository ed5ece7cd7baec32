"""Where the server may send a request a stranger named: the address policy against server-side
request forgery, for OAuth client metadata documents and webhook endpoints alike.

A URL is acceptable when its host resolves only to public addresses: never loopback, private,
link-local (169.254.169.254, the cloud metadata service), multicast or reserved ones. A caller
that resolved a URL connects to one of the addresses it checked (`PublicUrl.addresses`), so a DNS
answer that changes between the check and the request (DNS rebinding) cannot move it inside.
`allow_loopback` (tests, local development; off by default) also admits loopback addresses.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio

__all__ = ["PublicUrl", "UnsafeUrl", "check_outbound_url"]


class UnsafeUrl(Exception):
    """Why a URL may not be requested (safe to show: it names the URL, never its resolution)."""


@dataclass(frozen=True)
class PublicUrl:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


async def check_outbound_url(url: str, *, allow_loopback: bool, https_only: bool = True) -> PublicUrl:
    """`url` checked and resolved, or `UnsafeUrl` saying why not. http is accepted only when
    `https_only` is off, or for loopback targets when `allow_loopback` is on."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # a host that is not one: `[not-ipv6]`, or letters NFKC turns into `@`, `/` or `:`
        raise UnsafeUrl(f"{url}: its host is not a host name") from None
    if parts.username or parts.password:
        raise UnsafeUrl(f"{url}: a URL with credentials in it is not accepted")
    if parts.scheme not in ("https", "http") or not hostname:
        raise UnsafeUrl(f"{url}: must be an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl(f"{url}: the port is not a number from 1 to 65535") from None
    try:
        found = await anyio.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"{url}: its host does not resolve") from None
    addresses = tuple(dict.fromkeys(str(address[0]) for *_, address in found))
    loopback = [ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses]
    for address, is_loopback in zip(addresses, loopback, strict=True):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not (ip.is_global or (allow_loopback and is_loopback)):
            raise UnsafeUrl(f"{url}: its host resolves to a private, loopback or reserved address; only public addresses are reached")
    if parts.scheme == "http" and https_only and not (allow_loopback and all(loopback)):
        raise UnsafeUrl(f"{url}: must be https")
    return PublicUrl(url=url, scheme=parts.scheme, host=parts.hostname, port=port, addresses=addresses)
