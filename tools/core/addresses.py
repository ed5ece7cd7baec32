"""Which IP addresses the server may send a request to, when a stranger chose the URL: the address
half of the outbound policy (`tools.core.outbound` is the URL and request half).

Only globally routable unicast is admitted. Every block of the IANA special-purpose registries
(IPv4 and IPv6, as of 2025) is refused, whatever Python's `ip.is_global` says about it (it calls
multicast, NAT64 and 6to4 addresses global), and for IPv6 only 2000::/3 is admitted at all.

An IPv6 address can carry an IPv4 one; each such form is decoded, and:

- judged by the IPv4 address it carries, because a packet to it goes to exactly that address:
  IPv4-mapped `::ffff:0:0/96` (the kernel sends it as IPv4) and NAT64 `64:ff9b::/96` (a translator
  does; DNS64 networks answer every IPv4-only name with one);
- refused outright, the carried address only named in the reason: IPv4-compatible `::/96`
  (deprecated, routed nowhere it should be), IPv4-translated `::ffff:0:0:0/96`, local-use NAT64
  `64:ff9b:1::/48` (the carried address's position depends on a local prefix length), 6to4
  `2002::/16` and Teredo `2001::/32` (tunnels: they lead into the network behind the IPv4 address
  they carry, so that address cannot vouch for them).

`allow_loopback` (tests, local development) admits loopback and nothing else: 127.0.0.0/8, ::1 and
the IPv4-mapped forms of 127.0.0.0/8 (the kernel sends those to 127.x). Not 0.0.0.0, which Linux
also connects to the local host, and not the tunnels' or translators' forms of 127.x.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

__all__ = ["address_refusal", "is_loopback", "parse_address"]

IPAddress = IPv4Address | IPv6Address


def _blocks(network_type, rows: tuple[tuple[str, str], ...]) -> tuple:
    return tuple((network_type(network), what) for network, what in rows)


# The IANA IPv4 special-purpose address registry, every entry (the ones it marks globally
# reachable too: AS112, AMT, the PCP and TURN anycast in 192.0.0.0/24; no webhook lives there),
# and 240.0.0.0/4 with the broadcast address. The first match names the reason.
_IPV4_REFUSED = _blocks(
    IPv4Network,
    (
        ("0.0.0.0/8", "'this network' (0.0.0.0 reaches the local host)"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata services live here)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.31.196.0/24", "AS112"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "the deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("192.175.48.0/24", "AS112 direct delegation"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    ),
)

_GLOBAL_UNICAST = IPv6Network("2000::/3")

# IPv6 outside 2000::/3 is refused anyway; these name the reason for the common ones.
_IPV6_OUTSIDE_NAMED = _blocks(
    IPv6Network,
    (
        ("::/128", "unspecified"),
        ("100::/64", "discard-only"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ),
)

# The IANA IPv6 special-purpose registry's entries inside 2000::/3 (6to4 and Teredo are decoded
# before these are looked at; 2001::/23 holds Teredo, benchmarking, AMT, AS112, ORCHID, drone ids).
_IPV6_INSIDE_REFUSED = _blocks(
    IPv6Network,
    (
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF protocol assignments"),
        ("2620:4f:8000::/48", "AS112 direct delegation"),
        ("3fff::/20", "documentation"),
    ),
)

_MAPPED = IPv6Network("::ffff:0:0/96")
_COMPATIBLE = IPv6Network("::/96")
_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_SIX_TO_FOUR = IPv6Network("2002::/16")


def parse_address(text: str) -> IPAddress:
    """An address as `getaddrinfo` gives it, less any IPv6 zone (`fe80::1%eth0`): the zone picks
    an interface, not a different address."""
    return ip_address(text.split("%", 1)[0])


def is_loopback(address: IPAddress) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped 127.x: what `allow_loopback` admits."""
    if isinstance(address, IPv6Address) and address in _MAPPED:
        address = _carried(address)
    return address.is_loopback


def address_refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """None when a request may go to `address`; otherwise what the address is, for a log or a
    test (`"multicast"`, `"IPv4-mapped 169.254.169.254: link-local ..."`)."""
    if allow_loopback and is_loopback(address):
        return None
    if isinstance(address, IPv4Address):
        return _ipv4_refusal(address)
    return _ipv6_refusal(address)


def _ipv4_refusal(address: IPv4Address) -> str | None:
    for network, what in _IPV4_REFUSED:
        if address in network:
            return what
    return None


def _carried(address: IPv6Address) -> IPv4Address:
    """The IPv4 address in the last 32 bits (mapped, compatible, translated, NAT64 /96)."""
    return IPv4Address(int(address) & 0xFFFF_FFFF)


def _ipv6_refusal(address: IPv6Address) -> str | None:
    if address == IPv6Address("::1"):
        return "loopback"
    if address == IPv6Address("::"):
        return "unspecified"
    if address in _MAPPED:
        problem = _ipv4_refusal(_carried(address))
        return f"IPv4-mapped {_carried(address)}: {problem}" if problem else None
    if address in _NAT64:
        problem = _ipv4_refusal(_carried(address))
        return f"NAT64 {_carried(address)}: {problem}" if problem else None
    if address in _COMPATIBLE:
        return f"IPv4-compatible {_carried(address)} (deprecated)"
    if address in _TRANSLATED:
        return f"IPv4-translated {_carried(address)}"
    if address in _NAT64_LOCAL:
        return "local-use NAT64"
    if address in _SIX_TO_FOUR:
        return f"6to4, a tunnel to {address.sixtofour}"
    if (teredo := address.teredo) is not None:  # in 2001::/32
        server, client = teredo  # the client's address is stored inverted (obfuscated)
        return f"Teredo, a tunnel to {client} through {server}"
    if address not in _GLOBAL_UNICAST:
        for network, what in _IPV6_OUTSIDE_NAMED:
            if address in network:
                return what
        return "not global unicast (outside 2000::/3)"
    for network, what in _IPV6_INSIDE_REFUSED:
        if address in network:
            return what
    return None
