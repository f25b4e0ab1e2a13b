"""Where a webhook may be delivered: only to public internet addresses, unless allowed.

A webhook URL is chosen by an organisation, and the exchange's workers call it; without a check
an organisation could make them call the exchange's own private network (its database, Redis,
cloud metadata at 169.254.169.254): server-side request forgery (OWASP SSRF Prevention Cheat
Sheet). So the host is resolved at delivery time, every address it resolves to must be global
(not private, loopback, link-local, shared, reserved or multicast), and the request is then sent
to the address that was checked, with the URL's host kept in the ``Host`` header and the TLS
server name, so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot redirect it. A deployment whose receivers live on its own network (and the tests and
the demo, which receive on 127.0.0.1) turns the check off with a setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class PrivateTargetError(ValueError):
    """The webhook's host is, or resolves to, an address that is not on the public internet."""


def is_public(address: IPAddress) -> bool:
    """Whether ``address`` is a global unicast address (an IPv4-mapped IPv6 address is judged
    by the IPv4 address inside it)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (an IP literal gives itself)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> IPAddress:
    # A link-local IPv6 answer may carry its interface ("fe80::1%eth0").
    return ipaddress.ip_address(text.split("%", 1)[0])


async def public_address(host: str, port: int, resolve: Resolver = system_resolver) -> IPAddress:
    """The address to connect to for ``host``: the first it resolves to, provided that every
    address it resolves to is public (one private answer is enough to refuse, as a client may
    fall back to any of them)."""
    try:
        answers = [_address(answer) for answer in await resolve(host, port)]
    except (OSError, ValueError) as error:
        raise PrivateTargetError(f"the host does not resolve: {type(error).__name__}") from error
    if not answers:
        raise PrivateTargetError("the host does not resolve")
    if not all(is_public(answer) for answer in answers):
        raise PrivateTargetError("the host resolves to a private or reserved address")
    return answers[0]


@dataclass(frozen=True)
class PinnedRequest:
    """A request's URL rewritten to one checked address, with what keeps it addressed to the
    original host: the ``Host`` header and (for https) the TLS server name, against which
    the certificate is still verified."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


def pinned_request(url: str, address: IPAddress) -> PinnedRequest:
    original = httpx.URL(url)
    host = original.host
    bracketed = f"[{host}]" if ":" in host else host
    # httpx gives no port for a scheme's default one.
    authority = bracketed if original.port is None else f"{bracketed}:{original.port}"
    extensions: dict[str, Any] = {}
    if original.scheme == "https":
        extensions["sni_hostname"] = host
    return PinnedRequest(
        url=original.copy_with(host=str(address)),
        headers={"Host": authority},
        extensions=extensions,
    )
