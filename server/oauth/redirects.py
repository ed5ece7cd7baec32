"""Which redirect URIs a client may register: https, or http on a loopback address for a native
app on the user's own machine (RFC 8252 §7.3); never with userinfo (`https://claude.ai@evil.example/`
reads as claude.ai but goes to evil.example) or a fragment. Compared exactly when used (the SDK's
check). The consent page names a redirect URI by its host alone (`tools.domains.oauth.redirect_host`)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["redirect_uri_problem"]


def redirect_uri_problem(uri: str) -> str | None:
    """What is wrong with `uri` as a redirect URI, or None."""
    try:
        parts = urlsplit(uri)
        _ = parts.port  # read for its check: a port that is not a number raises ValueError
    except ValueError:
        return f"redirect URI {uri} is not a valid URL"
    if "@" in parts.netloc:
        return f"redirect URI {uri} has userinfo (a user name before '@'): name the host alone"
    if parts.fragment:
        return f"redirect URI {uri} has a fragment"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return None
    return f"redirect URI {uri} must be https, or http on a loopback address (127.0.0.1, [::1], localhost)"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
