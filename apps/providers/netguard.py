"""Keeping user-typed base URLs off the server's own network (SSRF).

Two checks. When a teacher or student enters a URL: scheme, userinfo, host spelling and the
addresses its name resolves to. And when connecting: the HTTP client's network backend
resolves the host itself, refuses any non-public address and connects to the address it
checked, so a name that changes its answer later (DNS rebinding) or a redirect to an
internal host is refused as well. Site URLs set by an admin or the environment are trusted
and do not use this client.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2
from django.conf import settings
from django.utils.translation import gettext_lazy as _

# A marker in the connect error, so the client can tell "refused by policy" from "down".
BLOCKED_MARKER = "webchat-blocked-address"
_HOST_CHARS = re.compile(r"^[A-Za-z0-9.-]+$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(ValueError):
    """The URL may not be used; the message says why (and is safe to show)."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in settings.OUTBOUND_ALLOWED_NETWORKS]


def address_is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses. Embedded IPv4 (mapped, NAT64, 6to4)
    is judged by the IPv4 address inside."""
    if any(address in net for net in _allowed_networks()):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_is_public(address.ipv4_mapped)
        if address in _NAT64:
            return address_is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address in _SIXTOFOUR:
            return address_is_public(ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def _numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host stands for, in any spelling browsers and libc accept:
    dotted, decimal (2130706433), octal (0177.0.0.1), hex (0x7f.1), IPv6 in brackets."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise BlockedURL(_("The host name does not resolve.")) from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def url_check_public(url: str) -> str:
    """Validate a user-typed base URL. Returns it normalised (no trailing slash); raises
    BlockedURL with a message fit for the user."""
    url = url.strip()
    if "\\" in url or any(ch.isspace() for ch in url):
        raise BlockedURL(_("The URL contains characters that are not allowed."))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(_("Only http:// and https:// URLs are allowed."))
    if "@" in parts.netloc or parts.username or parts.password:
        raise BlockedURL(_("URLs with a user name or password in them are not allowed."))
    host = parts.hostname or ""
    if not host:
        raise BlockedURL(_("The URL has no host."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedURL(_("The URL's port is not valid.")) from None
    numeric = _numeric_host(host)
    if numeric is None and not _HOST_CHARS.match(host):
        raise BlockedURL(_("The host name contains characters that are not allowed."))
    addresses = [numeric] if numeric is not None else _resolve(host, port)
    if not addresses or not all(address_is_public(a) for a in addresses):
        raise BlockedURL(_("That address is on a private or internal network, which is not allowed."))
    return url.rstrip("/")


class PublicOnlyBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks and connects to public addresses only."""

    def __init__(self) -> None:
        from httpcore2._backends.auto import AutoBackend

        self._inner = AutoBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None) -> httpcore2.AsyncNetworkStream:
        numeric = _numeric_host(host)
        if numeric is not None:
            addresses: list[IPAddress] = [numeric]
        else:
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore2.ConnectError(str(exc)) from None
            addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        public = [a for a in addresses if address_is_public(a)]
        if not public or len(public) != len(addresses):
            raise httpcore2.ConnectError(f"{BLOCKED_MARKER}: {host} resolves to a non-public address")
        # Connect to the address that was checked, not to the name (which could now answer
        # differently). TLS still verifies the certificate against the original host name.
        return await self._inner.connect_tcp(str(public[0]), port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, *args: object, **kwargs: object) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError(f"{BLOCKED_MARKER}: unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicOnlyTransport(httpx2.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__(trust_env=False)
        # The same pool httpx builds, with the checking backend underneath.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=PublicOnlyBackend(),
        )


def http_client_for(*, user_supplied_url: bool, timeout: httpx2.Timeout) -> httpx2.AsyncClient:
    """The HTTP client for one provider call. User-typed URLs get the public-only transport;
    redirects are followed (as the SDK does) and each hop connects through the same check."""
    if user_supplied_url:
        return httpx2.AsyncClient(transport=PublicOnlyTransport(), timeout=timeout, follow_redirects=True,
                                  trust_env=False)
    return httpx2.AsyncClient(timeout=timeout, follow_redirects=True)
