"""The client's IP address, read one way everywhere: sign-in throttling, the audit trail."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR; behind TINYSTACKS_TRUSTED_PROXIES proxies, the address the outermost of them
    saw (each proxy appends its peer to X-Forwarded-For, so entries further left are the client's
    to forge). None when it is not an IP address (a socket path, a garbled header)."""
    proxies = settings.TINYSTACKS_TRUSTED_PROXIES
    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [hop.strip() for hop in header.split(",")] if header else []
    if proxies and len(forwarded) >= proxies:
        address = forwarded[-proxies]
    else:  # no proxy, or the request came round it: its peer is the client
        address = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None
