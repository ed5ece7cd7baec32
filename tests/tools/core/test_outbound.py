"""The outbound policy against server-side request forgery (`tools.core.addresses`,
`tools.core.outbound`), as webhooks and OAuth client ID metadata documents meet it.

The address table holds what a pentest got through `ip.is_global` (multicast, NAT64, 6to4 and
IPv4-compatible forms of loopback and the metadata service), and its neighbours on both sides.
Requests go to real HTTP servers on 127.0.0.1 (`allow_loopback`): one that trickles its answer a
byte at a time, and a pair that stand for a DNS name answering one address at the check and
another at the connection (rebinding)."""

from __future__ import annotations

import json
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path

import anyio
import pytest
from sqlalchemy import select

from server.oauth.client_documents import DocumentRefused, fetch_client_document
from storage.tables import WebhookDelivery, WebhookEndpoint
from tests.support.factories import error, make_course, mcp_client
from tests.support.oauth import REDIRECT
from tests.support.rest import http_app, rest_client
from tests.support.webhooks import courses_announced_to, delivering, settle
from tools.core.addresses import address_refusal
from tools.core.context import Services
from tools.core.outbound import OutboundClient, RequestFailed, UnsafeUrl, check_outbound_url
from tools.domains.webhooks import new_secret

NOT_PUBLIC = "its host resolves to a private, loopback or reserved address"
BAD_PORT = "the port is not a number from 1 to 65535"
NOT_A_HOST = "its host is not a host name"

PENTEST_ADDRESSES = (
    "224.0.0.1",
    "ff02::1",
    "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",
    "::127.0.0.1",
    "::a9fe:a9fe",
)
"""Python calls these global; webhooks to them were created over REST and MCP."""

# (address, what it is refused as, or None when admitted; admitted under `allow_loopback`?)
ADDRESSES = [
    # globally routable unicast, and the first addresses past the edges of special blocks
    ("8.8.8.8", None, True),
    ("1.1.1.1", None, True),
    ("100.63.255.255", None, True),
    ("100.128.0.0", None, True),
    ("172.15.255.255", None, True),
    ("172.32.0.0", None, True),
    ("198.17.255.255", None, True),
    ("198.20.0.0", None, True),
    ("223.255.255.255", None, True),
    ("2606:4700:4700::1111", None, True),
    ("2001:4860:4860::8888", None, True),
    ("2001:200::1", None, True),  # just past 2001::/23
    ("::ffff:8.8.8.8", None, True),  # IPv4-mapped: the kernel sends it to 8.8.8.8
    ("64:ff9b::808:808", None, True),  # NAT64: the translator sends it to 8.8.8.8 (DNS64 networks)
    # the pentest's
    ("224.0.0.1", "multicast", False),
    ("ff02::1", "multicast", False),
    ("64:ff9b::7f00:1", "NAT64 127.0.0.1: loopback", False),
    ("64:ff9b::a9fe:a9fe", "NAT64 169.254.169.254: link-local", False),
    ("2002:7f00:1::", "6to4, a tunnel to 127.0.0.1", False),
    ("::127.0.0.1", "IPv4-compatible 127.0.0.1", False),
    ("::a9fe:a9fe", "IPv4-compatible 169.254.169.254", False),
    # IPv4 special-purpose blocks
    ("0.0.0.0", "this network", False),  # Linux connects it to the local host: not loopback, still refused
    ("0.1.2.3", "this network", False),
    ("10.0.0.1", "private", False),
    ("100.64.0.1", "shared address space", False),
    ("100.127.255.254", "shared address space", False),
    ("127.0.0.1", "loopback", True),
    ("127.255.255.254", "loopback", True),
    ("169.254.169.254", "link-local", False),
    ("172.16.0.1", "private", False),
    ("172.31.255.255", "private", False),
    ("192.0.0.9", "IETF protocol assignments", False),
    ("192.0.0.170", "IETF protocol assignments", False),  # NAT64 prefix discovery
    ("192.0.2.1", "documentation", False),
    ("192.88.99.1", "6to4 relay anycast", False),
    ("192.168.1.1", "private", False),
    ("198.18.0.1", "benchmarking", False),
    ("198.19.255.255", "benchmarking", False),
    ("198.51.100.7", "documentation", False),
    ("203.0.113.9", "documentation", False),
    ("239.255.255.250", "multicast", False),
    ("240.0.0.1", "reserved", False),
    ("255.255.255.255", "broadcast", False),
    # IPv6 special-purpose blocks, and everything outside 2000::/3
    ("::", "unspecified", False),
    ("::1", "loopback", True),
    ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1: loopback", True),
    ("::ffff:7f00:2", "IPv4-mapped 127.0.0.2: loopback", True),
    ("::ffff:169.254.169.254", "IPv4-mapped 169.254.169.254: link-local", False),
    ("::ffff:10.0.0.1", "IPv4-mapped 10.0.0.1: private", False),
    ("::ffff:0.0.0.0", "IPv4-mapped 0.0.0.0: 'this network'", False),
    ("::ffff:0:7f00:1", "IPv4-translated 127.0.0.1", False),
    ("64:ff9b::a00:1", "NAT64 10.0.0.1: private", False),
    ("64:ff9b:1::808:808", "local-use NAT64", False),
    ("2002:808:808::1", "6to4, a tunnel to 8.8.8.8", False),  # the tunnel leads into the site behind 8.8.8.8
    (
        "2001:0:808:808:0:0:80ff:fffe",
        "Teredo, a tunnel to 127.0.0.1 through 8.8.8.8",
        False,
    ),  # client obfuscated
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo, a tunnel to 192.0.2.45", False),
    ("fc00::1", "unique local", False),
    ("fd12:3456:789a::1", "unique local", False),
    ("fe80::1", "link-local", False),
    ("fec0::1", "site-local", False),
    ("ff05::1:3", "multicast", False),
    ("100::1", "discard-only", False),
    ("5f00::1", "outside 2000::/3", False),
    ("4000::1", "outside 2000::/3", False),
    ("2001:db8::1", "documentation", False),
    ("3fff::1", "documentation", False),
    ("2001:2::1", "IETF protocol assignments", False),  # benchmarking
    ("2001:20::1", "IETF protocol assignments", False),  # ORCHIDv2
    ("2620:4f:8000::1", "AS112", False),
]


def _as_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@pytest.mark.parametrize(
    ("address", "refused_as", "with_loopback"), ADDRESSES, ids=[row[0] for row in ADDRESSES]
)
async def test_only_globally_routable_unicast_is_reached(address, refused_as, with_loopback):
    reason = address_refusal(ip_address(address), allow_loopback=False)
    assert reason is None if refused_as is None else refused_as in reason, reason
    assert (address_refusal(ip_address(address), allow_loopback=True) is None) is with_loopback
    url = f"https://{_as_host(address)}/hook"
    if refused_as is None:
        resolved = (await check_outbound_url(url, allow_loopback=False)).addresses
        assert [ip_address(found) for found in resolved] == [ip_address(address)]
    else:
        with pytest.raises(UnsafeUrl, match=NOT_PUBLIC):
            await check_outbound_url(url, allow_loopback=False)


# (URL, allow_loopback, the refusal, or None when admitted)
URLS = [
    # Other spellings of 127.0.0.1: getaddrinfo (inet_aton) reads them, and its answer is judged.
    ("http://2130706433/hook", False, NOT_PUBLIC),
    ("http://0x7f.1/hook", False, NOT_PUBLIC),
    ("http://127.1/hook", False, NOT_PUBLIC),
    ("http://0x7f000001/hook", False, NOT_PUBLIC),
    ("http://2130706433/hook", True, None),  # resolved to 127.0.0.1, which the setting admits
    ("http://0/hook", True, NOT_PUBLIC),  # 0.0.0.0: not loopback, even though Linux connects it locally
    # httpx2 (which would send the request) does not read octal or full-width digits: refused unread
    ("http://0177.0.0.1/hook", False, NOT_A_HOST),
    ("http://\uff11\uff12\uff17.0.0.1/hook", False, NOT_A_HOST),
    ("http://[::1]a.example/hook", True, NOT_A_HOST),  # urlsplit reads ::1 here, httpx2 no host at all
    ("https://[::ffff:169.254.169.254]/latest/meta-data", True, NOT_PUBLIC),
    ("https://[::ffff:127.0.0.1]/hook", False, NOT_PUBLIC),
    ("https://[::ffff:7f00:1]/hook", False, NOT_PUBLIC),
    ("http://[::FFFF:7F00:1]:8080/hook", True, None),
    ("http://[::ffff:7f00:1]/hook", True, None),
    ("https://[64:ff9b::7f00:1]/hook", True, NOT_PUBLIC),  # loopback behind a translator is not loopback
    ("https://[::127.0.0.1]/hook", True, NOT_PUBLIC),
    ("https://localhost/hook", False, NOT_PUBLIC),
    ("http://localhost:9/hook", True, None),
    ("http://8.8.8.8/hook", False, "must be https"),
    ("http://8.8.8.8/hook", True, "must be https"),  # http only to loopback
    ("https://8.8.8.8:8443/hook", False, None),
    ("https://8.8.8.8/hook", False, None),
    # a port of 0 is a port, not "the default one"
    ("https://8.8.8.8:0/hook", False, BAD_PORT),
    ("http://127.0.0.1:0/hook", True, BAD_PORT),
    ("https://8.8.8.8:65536/hook", False, BAD_PORT),
    ("https://8.8.8.8:https/hook", False, BAD_PORT),
    # urlsplit drops a tab unseen, httpx2 refuses it: a control character is refused before either reads it
    ("https://8.8.8.8/ho\tok", False, "must not contain control characters"),
    ("https://8.8.8.8/ho\x01ok", False, "must not contain control characters"),
]


@pytest.mark.parametrize(("url", "allow_loopback", "refusal"), URLS)
async def test_every_spelling_of_a_url_is_resolved_before_it_is_judged(url, allow_loopback, refusal):
    if refusal is None:
        assert (await check_outbound_url(url, allow_loopback=allow_loopback)).addresses
    else:
        with pytest.raises(UnsafeUrl, match=refusal):
            await check_outbound_url(url, allow_loopback=allow_loopback)


async def test_a_port_of_zero_is_refused_rather_than_read_as_443():
    with pytest.raises(UnsafeUrl, match=BAD_PORT):
        await check_outbound_url("https://8.8.8.8:0/hook", allow_loopback=False)
    assert (await check_outbound_url("https://8.8.8.8/hook", allow_loopback=False)).port == 443


# ---- requests: a real server on 127.0.0.1


@dataclass
class Seen:
    """What one local server was asked: (method, path, Host header) per request."""

    url: str = ""
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


@contextmanager
def local_server(
    answer: Callable[[BaseHTTPRequestHandler], None],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Seen]:
    """A real HTTP server on `host` (a thread per request) whose handler `answer`s every GET and
    POST; an HTTPS one with `tls`, which records the names clients asked for (SNI) in `seen.sni`."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.requests.append((self.command, self.path, self.headers["Host"]))
            answer(self)

        do_POST = do_GET

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # a client that gave up mid-answer leaves a broken pipe: expected here

    httpd = Server((host, port), Handler)
    if tls is not None:
        tls.sni_callback = lambda connection, name, context: seen.sni.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    seen.url = f"{'https' if tls else 'http'}://{host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def json_answer(document: dict) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = json.dumps(document).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return answer


@contextmanager
def trickling_server() -> Iterator[tuple[Seen, list[int]]]:
    """A server that answers 200 with a body of 5,000 bytes, sent one byte every 250 ms (never idle
    long enough for a read timeout); and the bytes sent so far. It stops when the block ends."""
    sent: list[int] = []
    stop = threading.Event()

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length", 0)))
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "5000")
        handler.end_headers()
        while not stop.is_set() and len(sent) < 5000:
            handler.wfile.write(b" ")
            handler.wfile.flush()
            sent.append(1)
            time.sleep(0.25)  # a real trickle on the socket, slower than the read deadline allows

    with local_server(trickle) as seen:
        try:
            yield seen, sent
        finally:
            stop.set()


async def test_a_metadata_document_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline():
    """A byte every 250 ms never trips a per-read timeout: only a deadline for the whole fetch ends it."""
    with trickling_server() as (seen, sent):
        started = time.monotonic()
        with pytest.raises(DocumentRefused, match="could not be fetched: no answer within 1 s"):
            await fetch_client_document(
                f"{seen.url}/client.json", allow_loopback=True, scopes="courses:read", deadline_seconds=1
            )
        elapsed = time.monotonic() - started
    assert len(seen.requests) == 1 and len(sent) >= 2  # it was answering, slowly
    assert elapsed < 3, f"the fetch held on for {elapsed:.1f} s"


async def test_a_webhook_answer_trickled_a_byte_at_a_time_is_cut_off_at_the_timeout(store, tenant):
    with trickling_server() as (seen, sent):
        await courses_announced_to(store, tenant, f"{seen.url}/hooks", "slowly-answered")
        started = time.monotonic()
        async with delivering(store, webhook_retry_schedule=[], webhook_timeout_seconds=1):
            [delivery], _ = await settle(store, lambda deliveries, _: deliveries[0].state == "failed")
        elapsed = time.monotonic() - started
    assert len(seen.requests) == 1 and len(sent) >= 2
    assert delivery.error == "no answer within 1 s" and delivery.response_status is None
    assert elapsed < 4, f"the delivery held on for {elapsed:.1f} s"


@contextmanager
def rebinding_dns(monkeypatch: pytest.MonkeyPatch, name: str, *answers: str) -> Iterator[list[str]]:
    """The system resolver, except that `name` resolves to `answers[0]` at the first lookup,
    `answers[1]` at the second, and so on (a DNS server changing its answer: rebinding). Yields
    the lookups of `name` made."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def resolve(host, port, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) != name:
            return real(host, port, *args, **kwargs)
        lookups.append(name)
        if len(lookups) > len(answers):
            raise socket.gaierror(socket.EAI_NONAME, "no more answers")
        return real(answers[len(lookups) - 1], port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    yield lookups


@contextmanager
def checked_and_inside(answer: Callable[[BaseHTTPRequestHandler], None]) -> Iterator[tuple[Seen, Seen]]:
    """Two servers on one port: the one the check admits (127.0.0.1) and one that stands for an
    address inside (127.0.0.2) that a second lookup would lead to."""
    with local_server(answer) as checked:
        port = int(checked.url.rsplit(":", 1)[1])
        with local_server(answer, host="127.0.0.2", port=port) as inside:
            yield checked, inside


async def test_a_metadata_document_is_fetched_from_the_address_that_was_checked(monkeypatch):
    document: dict = {"client_name": "Rebound", "redirect_uris": [REDIRECT]}
    with checked_and_inside(json_answer(document)) as (checked, inside):
        port = int(checked.url.rsplit(":", 1)[1])
        client_id = document["client_id"] = f"http://rebind.test:{port}/oauth/client.json"
        with rebinding_dns(monkeypatch, "rebind.test", "127.0.0.1", "127.0.0.2") as lookups:
            client = await fetch_client_document(client_id, allow_loopback=True, scopes="courses:read")
    assert client.client_name == "Rebound"
    assert lookups == ["rebind.test"]  # resolved once, for the check
    assert (
        checked.requests == [("GET", "/oauth/client.json", f"rebind.test:{port}")] and inside.requests == []
    )


async def test_a_webhook_post_goes_to_the_address_that_was_checked(monkeypatch):
    def accept(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        handler.send_response(204)
        handler.end_headers()

    with checked_and_inside(accept) as (checked, inside):
        port = int(checked.url.rsplit(":", 1)[1])
        with rebinding_dns(monkeypatch, "rebind.test", "127.0.0.1", "127.0.0.2") as lookups:
            async with OutboundClient(allow_loopback=True) as outbound:
                answer = await outbound.request(
                    "POST", f"http://rebind.test:{port}/hooks", deadline=5, max_body_bytes=100, content=b"{}"
                )
    assert answer.status_code == 204 and lookups == ["rebind.test"]
    assert checked.requests == [("POST", "/hooks", f"rebind.test:{port}")] and inside.requests == []


def certificate_authority_and_server(name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A client context trusting a new certificate authority, and a server context holding that
    authority's certificate for `name` (and for no IP address)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def certificate(subject: str, key, issuer: str, issuer_key, *, authority: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        )
        if authority:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    authority_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    authority = certificate("Test authority", authority_key, "Test authority", authority_key, authority=True)
    server = certificate(name, server_key, "Test authority", authority_key, authority=False)
    client_context = ssl.create_default_context(
        cadata=authority.public_bytes(serialization.Encoding.PEM).decode()
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as directory:  # load_cert_chain reads files only
        chain, key = Path(directory, "chain.pem"), Path(directory, "key.pem")
        chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server_context.load_cert_chain(chain, key)
    return client_context, server_context


async def test_tls_verifies_the_host_name_though_the_connection_goes_to_the_checked_address(monkeypatch):
    """The request goes to 127.0.0.1, yet TLS asks for and verifies `hooks.test`: a certificate for
    the name passes, and the same server named otherwise (`impostor.test`) is refused."""

    def accept(handler: BaseHTTPRequestHandler) -> None:
        handler.rfile.read(int(handler.headers["Content-Length"]))
        handler.send_response(204)
        handler.end_headers()

    trusting, serving = certificate_authority_and_server("hooks.test")
    with local_server(accept, tls=serving) as seen:
        port = int(seen.url.rsplit(":", 1)[1])
        with (
            rebinding_dns(monkeypatch, "hooks.test", "127.0.0.1"),
            rebinding_dns(monkeypatch, "impostor.test", "127.0.0.1"),
        ):
            async with OutboundClient(allow_loopback=True, verify=trusting) as outbound:
                answer = await outbound.request(
                    "POST", f"https://hooks.test:{port}/hooks", deadline=5, max_body_bytes=100, content=b"{}"
                )
                with pytest.raises(RequestFailed, match="the connection failed"):
                    await outbound.request(
                        "POST",
                        f"https://impostor.test:{port}/hooks",
                        deadline=5,
                        max_body_bytes=100,
                        content=b"{}",
                    )
    assert answer.status_code == 204 and seen.requests == [("POST", "/hooks", f"hooks.test:{port}")]
    assert seen.sni == ["hooks.test", "impostor.test"]


async def test_an_answer_is_read_only_up_to_its_cap():
    with local_server(json_answer({"padding": "x" * 10_000})) as seen:
        async with OutboundClient(allow_loopback=True) as outbound:
            answer = await outbound.request("GET", f"{seen.url}/big", deadline=5, max_body_bytes=100)
    assert answer.truncated and len(answer.body) == 100 and answer.body.startswith(b'{"padding": "xxx')


# ---- webhooks to the pentest's addresses: refused when made, and when sent


async def test_webhooks_to_addresses_python_calls_global_are_refused_at_creation(store, tenant):
    """Over MCP and REST, even with loopback endpoints admitted (none of these is loopback)."""
    urls = [f"https://{_as_host(address)}/hook" for address in PENTEST_ADDRESSES]
    async with mcp_client(store, tenant.key, services=Services(webhooks_allow_loopback=True)) as client:
        over_mcp = [error(await client.call_tool("create_webhook", {"url": url})) for url in urls]
    async with rest_client(http_app(store, webhooks_allow_loopback=True), tenant.key) as http:
        over_rest = [await http.post("/webhooks", json={"url": url}) for url in urls]
    for url, refused in zip(urls, over_mcp, strict=True):
        assert (
            refused["error"] == "unprocessable"
            and refused["message"]
            == f"Invalid input: url: {url}: {NOT_PUBLIC}; only public addresses are reached"
        )
    for url, response in zip(
        urls, over_rest, strict=True
    ):  # a rule beyond the schema: 422, as the document lists
        assert (
            response.status_code == 422
            and response.json()["message"]
            == f"Invalid input: url: {url}: {NOT_PUBLIC}; only public addresses are reached"
        )
    async with store.sessions() as session:
        assert (await session.scalars(select(WebhookEndpoint))).all() == []


async def test_the_delivery_worker_refuses_the_pentests_addresses_at_send_time(store, tenant):
    """Endpoints written straight to the database (as if admitted by an older policy) get nothing:
    every delivery fails before any connection, naming the reason but not the URL."""
    async with store.writing() as db:
        for number, address in enumerate(PENTEST_ADDRESSES):
            db.session.add(
                WebhookEndpoint(
                    id=f"wh_pentest{number}",
                    producer_id=tenant.producer_id,
                    url=f"https://{_as_host(address)}/hook",
                    event_types=["course.created"],
                    secret=new_secret(),
                )
            )
    async with mcp_client(store, tenant.key) as client:
        await make_course(client)
    async with delivering(store, webhook_retry_schedule=[]):  # loopback admitted: these are not loopback
        with anyio.fail_after(10):
            while True:
                async with store.sessions() as session:
                    deliveries = (await session.scalars(select(WebhookDelivery))).all()
                if len(deliveries) == len(PENTEST_ADDRESSES) and all(
                    delivery.state == "failed" for delivery in deliveries
                ):
                    break
                await anyio.sleep(0.02)  # the delivery worker runs beside the test: poll the rows it writes
    for delivery in deliveries:
        assert delivery.attempts == 1 and delivery.response_status is None
        assert delivery.error == f"not sent: {NOT_PUBLIC}; only public addresses are reached", delivery.error
