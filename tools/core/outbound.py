"""Requests to URLs a stranger named: the outbound policy against server-side request forgery, one
for OAuth client ID metadata documents (`server.oauth.client_documents`) and webhook deliveries
(`server.webhooks`) alike.

`check_outbound_url` accepts a URL whose host resolves only to addresses `tools.core.addresses`
admits (globally routable unicast; loopback too under `allow_loopback`), on a port from 1 to 65535,
with no credentials in it. `OutboundClient.request` checks the URL and then connects to an address
that check resolved: the name is resolved once, so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot move the request inside. The request still names the host in
`Host`, and TLS still verifies the certificate for the host name (SNI), not for the address. It
follows no redirects, keeps no connection alive (a pooled TLS connection to one address, verified
for one host name, must never carry a request for another host on that address), holds the whole
exchange to one deadline (resolution, connection, headers and body: a server trickling its answer
a byte at a time is cut off, not waited on read by read) and reads at most `max_body_bytes`.

The URL is read by one parser for the check (`urlsplit`), and the request is built by another
(httpx2's); a URL they read differently is refused (`http://[::1]a.example/`: urlsplit reads the
host `::1`, httpx2 none), and so is one with a control character (urlsplit drops tabs unseen).
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import anyio
import httpx2

from tools.core.addresses import address_refusal, is_loopback, parse_address

__all__ = [
    "OutboundClient",
    "OutboundResponse",
    "PublicUrl",
    "RequestFailed",
    "UnsafeUrl",
    "check_outbound_url",
]


class UnsafeUrl(Exception):
    """Why a URL may not be requested (safe to show: it names the URL, never its resolution)."""


class RequestFailed(Exception):
    """A checked request that got no complete answer: its text says why (`no answer within 5 s`,
    `the connection failed (ConnectError)`), naming neither the URL nor the address."""


@dataclass(frozen=True)
class PublicUrl:
    """A URL that passed the check: `host` as sent in `Host` and SNI (IDNA-encoded, no brackets),
    and the `addresses` it resolved to, every one of them admitted."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class OutboundResponse:
    """An answer: `body` is at most the `max_body_bytes` asked for, `truncated` when there was more
    (the rest was not read). A redirect is an answer like any other; it is not followed."""

    status_code: int
    headers: httpx2.Headers
    body: bytes
    truncated: bool
    latency_ms: int

    @property
    def is_redirect(self) -> bool:
        return 300 <= self.status_code < 400 and "location" in self.headers


_DEFAULT_PORTS = {"https": 443, "http": 80}
_NOT_PUBLIC = (
    "its host resolves to a private, loopback or reserved address; only public addresses are reached"
)


async def check_outbound_url(url: str, *, allow_loopback: bool, https_only: bool = True) -> PublicUrl:
    """`url` checked and resolved, or `UnsafeUrl` saying why not. http is accepted only when
    `https_only` is off, or for loopback targets when `allow_loopback` is on."""
    if any(character.isascii() and not character.isprintable() for character in url):
        # urlsplit drops tabs and newlines unseen, httpx2 refuses every one: the two would disagree
        raise UnsafeUrl(f"{url}: must not contain control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # a host that is not one: `[not-ipv6]`, or letters NFKC turns into `@`, `/` or `:`
        raise UnsafeUrl(f"{url}: its host is not a host name") from None
    if parts.username or parts.password:
        raise UnsafeUrl(f"{url}: a URL with credentials in it is not accepted")
    if parts.scheme not in _DEFAULT_PORTS or not hostname:
        raise UnsafeUrl(f"{url}: must be an http(s) URL with a host")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port is None:
        port = _DEFAULT_PORTS[parts.scheme]
    elif not 1 <= port <= 65535:  # `:0` too, which is not "the default port"
        raise UnsafeUrl(f"{url}: the port is not a number from 1 to 65535")
    host = _host_as_requested(url, hostname, port)
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUrl(f"{url}: its host does not resolve") from None
    addresses = tuple(dict.fromkeys(str(address[0]) for *_, address in found))
    parsed = [parse_address(address) for address in addresses]
    if not parsed or any(address_refusal(address, allow_loopback=allow_loopback) for address in parsed):
        raise UnsafeUrl(f"{url}: {_NOT_PUBLIC}")
    if (
        parts.scheme == "http"
        and https_only
        and not (allow_loopback and all(is_loopback(address) for address in parsed))
    ):
        raise UnsafeUrl(f"{url}: must be https")
    return PublicUrl(url=url, scheme=parts.scheme, host=host, port=port, addresses=addresses)


def _host_as_requested(url: str, hostname: str, port: int) -> str:
    """The host httpx2 would send the request to, once it is sure to be the one `urlsplit` read."""
    try:
        request_url = httpx2.URL(url)
    except httpx2.InvalidURL:
        raise UnsafeUrl(f"{url}: its host is not a host name") from None
    if (
        request_url.host.lower() != hostname
        or (request_url.port or _DEFAULT_PORTS[request_url.scheme]) != port
    ):
        raise UnsafeUrl(f"{url}: its host is not a host name")
    return request_url.raw_host.decode("ascii")


class OutboundClient:
    """Checked requests to URLs strangers name (module docstring); used as `async with`."""

    def __init__(
        self, *, allow_loopback: bool, https_only: bool = True, verify: ssl.SSLContext | bool = True
    ) -> None:
        """`verify`: the certificate authorities TLS trusts (httpx2's default, certifi's; tests pass
        a context that trusts their own)."""
        self._allow_loopback = allow_loopback
        self._https_only = https_only
        # Its own deadline replaces httpx2's per-operation timeouts, which a trickle never trips.
        self._http = httpx2.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=None,
            verify=verify,
            limits=httpx2.Limits(max_keepalive_connections=0),
        )

    async def __aenter__(self) -> Self:
        await self._http.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._http.__aexit__(kind, error, trace)

    async def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        max_body_bytes: int,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> OutboundResponse:
        """Check `url`, send the request to an address the check resolved, and read the answer, all
        within `deadline` seconds. `UnsafeUrl` if the URL is refused (nothing was sent),
        `RequestFailed` if no complete answer came (connection, protocol, deadline)."""
        with anyio.move_on_after(deadline):
            target = await check_outbound_url(
                url, allow_loopback=self._allow_loopback, https_only=self._https_only
            )
            return await self._send(target, method, headers or {}, content, max_body_bytes)
        raise RequestFailed(f"no answer within {deadline:g} s")

    async def _send(
        self,
        target: PublicUrl,
        method: str,
        headers: dict[str, str],
        content: bytes | None,
        max_body_bytes: int,
    ) -> OutboundResponse:
        """Try the checked addresses in turn until one connects (a host with an IPv6 address this
        machine cannot route to still gets its request on IPv4)."""
        request_url = httpx2.URL(target.url)
        headers = {
            "user-agent": "Blohko",
            **headers,
            "host": request_url.netloc.decode("ascii"),
            "accept-encoding": "identity",  # the size cap counts bytes as they arrive: no decompression bombs
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        failure: httpx2.HTTPError | None = None
        for (
            address
        ) in target.addresses:  # as parsed: a zone comes only with link-local ones, which are refused
            started = time.monotonic()
            try:
                async with self._http.stream(
                    method,
                    request_url.copy_with(host=str(parse_address(address))),
                    headers=headers,
                    content=content,
                    extensions=extensions,
                ) as response:
                    body, truncated = await _read(response, max_body_bytes)
            except httpx2.ConnectError as error:  # nothing was sent: the next address may answer
                failure = error
                continue
            except httpx2.HTTPError as error:
                raise RequestFailed(f"the request failed ({type(error).__name__})") from None
            latency_ms = round((time.monotonic() - started) * 1000)
            return OutboundResponse(
                response.status_code, response.headers, bytes(body), truncated, latency_ms
            )
        raise RequestFailed(f"the connection failed ({type(failure).__name__})")


async def _read(response: httpx2.Response, max_body_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_body_bytes` of the body as sent, and whether there was more (left unread)."""
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_body_bytes:
            return bytes(body[:max_body_bytes]), True
    return bytes(body), False
