"""Which addresses a webhook may be sent to: the guard against server-side request forgery.

A name is resolved once per attempt and every address it gives is checked; the connection then
goes to the address checked (``hub.runtime.webhooks.sender``), so a name that resolves to a
public address for the check and to a private one for the connection (DNS rebinding) gets
nowhere. Only public (globally routable unicast) addresses pass, unless private networks are
allowed: IPv4 inside IPv6 (mapped, NAT64, 6to4, Teredo) is checked as the IPv4 address it
carries.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from urllib.parse import urlsplit

__all__ = ["IPAddress", "check_url", "refusal", "resolve", "resolve_blocking"]

IPAddress = IPv4Address | IPv6Address

_NAT64 = ip_network("64:ff9b::/96")


def _carried(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4, Teredo), else itself."""
    if isinstance(address, IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address
    return address


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address`` (None: it may): anything but a public unicast
    address, so loopback, private, link-local (cloud metadata at 169.254.169.254), shared
    (CGNAT 100.64/10), unique local, reserved, multicast and unspecified addresses."""
    target = _carried(address)  # an IPv4 address inside IPv6 goes where it says
    if target.is_multicast:
        return f"{target} is a multicast address"
    if target.is_loopback:
        return f"{target} is a loopback address"
    if target.is_link_local:
        return f"{target} is a link-local address"
    if target.is_reserved or target.is_unspecified:
        return f"{target} is a reserved address"
    if not target.is_global:
        return f"{target} is not a public address"
    return None


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a webhook URL; ValueError unless it is an http(s) URL with
    a host and without credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # a port out of range, a malformed IPv6 literal
        raise ValueError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("the URL must not carry credentials (user:password@)")
    host = parts.hostname
    if not host:
        raise ValueError("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _addresses(infos: list[tuple[object, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone
        if address not in found:
            found.append(address)
    return found


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (once; an IP literal is itself). OSError when it
    does not resolve, a name that cannot be encoded for DNS included."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # an empty or over-long label, a character IDNA refuses
        raise OSError(f"not a valid host name: {exc}") from None
    return _addresses(list(infos))


def resolve_blocking(host: str, port: int) -> list[IPAddress]:
    """:func:`resolve` for code outside an event loop (checks at create and update)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(f"not a valid host name: {exc}") from None
    return _addresses(list(infos))


def _literal(host: str) -> IPAddress | None:
    """The address a URL's host names by itself (no lookup needed), if it is one."""
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None
