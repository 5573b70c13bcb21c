"""Keeping user-typed base URLs off the server's own network (SSRF), and capping what any
upstream may send back.

Two checks. When a teacher or student enters a URL: that it parses (the same way for us and
for the HTTP client), scheme, userinfo, port, host spelling and the addresses its name
resolves to. And when connecting: the HTTP client's network backend resolves the host
itself, refuses any non-public address or disallowed port and connects to the address it
checked, so a name that changes its answer later (DNS rebinding) or a redirect to an
internal host or port is refused as well. Site URLs set by an admin or the environment are
trusted (any host and port) and do not use the public-only backend.

Every provider client, site URLs included, reads response bodies through `CappedTransport`:
a provider (or a student's own server) cannot make a worker hold an unbounded body, line or
decompressed stream in memory.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore2
import httpx2
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.providers.netstream import AsyncioBackend, ConnectionPool
from webchat.errors import ErrorCode

# A marker in the connect error, so the client can tell "refused by policy" from "down".
BLOCKED_MARKER = "webchat-blocked-address"
_HOST_CHARS = re.compile(r"^[A-Za-z0-9.-]+$")
# IPv6 ranges whose last 32 bits are an IPv4 address that the packet really goes to (a
# translator or the host's own stack delivers it there), so that address is what we judge.
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291); also :: and ::1
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")  # ::ffff:a.b.c.d
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d (RFC 2765)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
# Refused whatever they carry: a local-use NAT64 prefix (RFC 8215) translates into the
# operator's own network, Teredo tunnels to an (obfuscated) IPv4 host, and site-local
# (deprecated) is still routed inside some sites. No provider is served from these.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TEREDO = ipaddress.ip_network("2001::/32")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")  # 2002:a.b.c.d::/48: tunnelled to a.b.c.d
# ISATAP interface ids (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d) carry the IPv4 address of the
# host behind the site's ISATAP router.
_ISATAP_IDS = (0x00005EFE, 0x02005EFE)
_LOW32 = 0xFFFFFFFF

# Ports a user-typed URL may use: the web's two, and the unprivileged range where model
# servers live (8000, 11434 ...). Not 0, not SSH, SMTP or the like below 1024. Redis and
# other internal services above 1024 are kept out by the address rules, not the port.
WEB_PORTS = (80, 443)
UNPRIVILEGED_PORTS = range(1024, 65536)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedURL(ValueError):
    """The URL may not be used; the message says why (and is safe to show)."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(net, strict=False) for net in settings.OUTBOUND_ALLOWED_NETWORKS]


def port_allowed(port: int) -> bool:
    """Whether a user-typed URL (or a redirect from one) may connect to this port."""
    return port in WEB_PORTS or port in UNPRIVILEGED_PORTS


def _ipv4_carried(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address is delivered to, for the forms that embed one."""
    if address in _IPV4_MAPPED or address in _IPV4_TRANSLATED or address in _IPV4_COMPATIBLE or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & _LOW32)
    if address in _SIXTOFOUR:
        return ipaddress.IPv4Address((int(address) >> 80) & _LOW32)
    return None


def address_is_public(address: IPAddress) -> bool:
    """True for globally routable unicast addresses (or ones the admin allowed). An IPv6
    address that carries an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4, ISATAP)
    is judged by the IPv4 address inside."""
    if any(address in net for net in _allowed_networks()):
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local or address in _NAT64_LOCAL or address in _TEREDO:
            return False
        carried = _ipv4_carried(address)
        if carried is not None:
            return address_is_public(carried)
        interface_id_high = (int(address) >> 32) & _LOW32
        if interface_id_high in _ISATAP_IDS and not address_is_public(ipaddress.IPv4Address(int(address) & _LOW32)):
            return False
    return address.is_global and not address.is_multicast and not address.is_reserved


def _numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host stands for, in any spelling browsers and libc accept:
    dotted, decimal (2130706433), octal (0177.0.0.1), hex (0x7f.1), IPv6 in brackets."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):  # ValueError: a NUL in the string
        return None


# Names in user-typed URLs are looked up on threads of their own, under the connect timeout:
# a name whose name server never answers holds one of these threads until the system's
# resolver gives up, never one the database steps or the site's own providers need.
USER_LOOKUP_THREADS = 4
_user_lookups = ThreadPoolExecutor(max_workers=USER_LOOKUP_THREADS, thread_name_prefix="user-url-lookup")


def _lookup(host: str, port: int) -> list[IPAddress]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _resolve(host: str, port: int) -> list[IPAddress]:
    lookup = _user_lookups.submit(_lookup, host, port)
    try:
        return lookup.result(timeout=settings.LLM_CONNECT_TIMEOUT)
    except TimeoutError:
        lookup.cancel()
        raise BlockedURL(_("The host name did not resolve in time. Check it and try again.")) from None
    except (OSError, UnicodeError):  # UnicodeError: an empty or over-long label
        raise BlockedURL(_("The host name does not resolve.")) from None


@dataclass(frozen=True)
class ParsedURL:
    url: str  # stripped, no trailing slash
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int  # the scheme's default when none is given


def url_parse(url: str) -> ParsedURL:
    """Parse a base URL the way both we and the HTTP client read it, or raise BlockedURL.
    Two parsers that disagree about the host are how SSRF checks get bypassed, so the URL
    must mean the same host and port to both."""
    url = url.strip().rstrip("/")
    if "\\" in url or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise BlockedURL(_("The URL contains characters that are not allowed."))
    try:
        parts = urlsplit(url)
        port = parts.port
        client_url = httpx2.URL(url)
    except (ValueError, httpx2.InvalidURL):  # "[::1", "[127.0.0.1]", port 99999, "[::1]x" ...
        raise BlockedURL(_("That is not a valid URL. Check the brackets, the host and the port.")) from None
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(_("Only http:// and https:// URLs are allowed."))
    if "@" in parts.netloc or parts.username or parts.password:
        raise BlockedURL(_("URLs with a user name or password in them are not allowed."))
    host = (parts.hostname or "").lower()
    if not host:
        raise BlockedURL(_("The URL has no host."))
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise BlockedURL(_("A base URL has no query (?) or fragment (#)."))
    port = port if port is not None else (443 if parts.scheme == "https" else 80)
    if client_url.host.lower() != host or (client_url.port or port) != port:
        raise BlockedURL(_("That is not a valid URL. Check the brackets, the host and the port."))
    return ParsedURL(url=url, scheme=parts.scheme, host=host, port=port)


def url_check_public(url: str) -> str:
    """Validate a user-typed base URL. Returns it normalised (no trailing slash); raises
    BlockedURL (and nothing else) with a message fit for the user."""
    parsed = url_parse(url)
    if not port_allowed(parsed.port):
        raise BlockedURL(_("Only ports 80, 443 and 1024 to 65535 are allowed."))
    numeric = _numeric_host(parsed.host)
    if numeric is None and not _HOST_CHARS.match(parsed.host):
        raise BlockedURL(_("The host name contains characters that are not allowed."))
    addresses = [numeric] if numeric is not None else _resolve(parsed.host, parsed.port)
    if not addresses or not all(address_is_public(a) for a in addresses):
        raise BlockedURL(_("That address is on a private or internal network, which is not allowed."))
    return parsed.url


def url_names_internal_host(url: str) -> bool:
    """Whether a URL plainly names an address that is not public (a numeric one, or
    localhost), without a DNS lookup: a name is judged when a connection resolves it."""
    try:
        host = url_parse(url).host
    except BlockedURL:
        return False
    numeric = _numeric_host(host)
    if numeric is not None:
        return not address_is_public(numeric)
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return not all(address_is_public(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1"))
    return False


class PublicOnlyBackend(AsyncioBackend):
    """Resolves, checks and connects to public addresses only."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        # The same rules as when the URL was entered, for the URL itself and every redirect.
        if not port_allowed(port):
            raise httpcore2.ConnectError(f"{BLOCKED_MARKER}: port {port} is not allowed")
        numeric = _numeric_host(host)
        loop = asyncio.get_running_loop()
        started = loop.time()
        if numeric is not None:
            addresses: list[IPAddress] = [numeric]
        else:
            # The lookup and the connection share the connect timeout.
            try:
                async with asyncio.timeout(timeout):
                    addresses = await loop.run_in_executor(_user_lookups, _lookup, host, port)
            except TimeoutError:
                raise httpcore2.ConnectTimeout(f"looking up {host} timed out") from None
            except (OSError, UnicodeError) as exc:  # UnicodeError: an empty or over-long label
                raise httpcore2.ConnectError(str(exc)) from None
            if timeout is not None:
                timeout = max(timeout - (loop.time() - started), 0.0)
        public = [a for a in addresses if address_is_public(a)]
        if not public or len(public) != len(addresses):
            raise httpcore2.ConnectError(f"{BLOCKED_MARKER}: {host} resolves to a non-public address")
        # Connect to the address that was checked, not to the name (which could now answer
        # differently). TLS still verifies the certificate against the original host name.
        return await super().connect_tcp(
            str(public[0]), port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError(f"{BLOCKED_MARKER}: unix sockets")


# One pool per process (per event loop) and kind of URL, shared by every call: a turn reuses a
# kept-alive connection (and its TLS session) instead of building an SSL context and
# connecting afresh. Bounded so a burst cannot open unlimited sockets to one provider.
POOL_LIMITS = httpx2.Limits(max_connections=200, max_keepalive_connections=100, keepalive_expiry=30.0)


@functools.cache
def _ssl_context(*, trust_env: bool) -> ssl.SSLContext:
    """The certificate store, loaded once per process (some 20 ms of CPU each time) and
    shared by every pool: an SSL context is safe to share between threads and loops."""
    return httpx2.create_ssl_context(trust_env=trust_env)


class PooledTransport(httpx2.AsyncHTTPTransport):
    """The pool httpx builds, on our network backend: asyncio's transports for the
    catalog's own URLs, PublicOnlyBackend (every new connection, each redirect hop too, resolved and
    checked; kept-alive ones were) for URLs a user typed."""

    def __init__(self, *, public_only: bool, limits: httpx2.Limits = POOL_LIMITS) -> None:
        ssl_context = _ssl_context(trust_env=not public_only)
        # httpx's own pool is replaced below; given the context, it builds none of its own.
        super().__init__(verify=ssl_context, trust_env=not public_only)
        self._pool = ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PublicOnlyBackend() if public_only else AsyncioBackend(),
        )


class ReplyRefused(Exception):
    """A response body broke a cap, or came in an encoding we did not ask for, while it was
    being read. `code` is the upstream error code to report."""

    def __init__(self, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# Caps on raw bytes, as multiples of LLM_MAX_REPLY_BYTES (the cap on a reply's text, which the
# client enforces on what it relays). A JSON body or one SSE line holding the whole reply is
# at most a few times its text (escapes); an SSE stream wraps each few characters of text in
# some 150-200 bytes of JSON, so a reply at the text cap may take ~60x that on the wire.
LINE_CAP_FACTOR = 4
STREAM_CAP_FACTOR = 128
_LINE_MARGIN = 64 * 1024
_DECOMPRESS_PIECE = 64 * 1024
# We ask for these and decode them here, under the caps: httpx would decode after them, so a
# small compressed body could unpack to gigabytes in memory.
ACCEPT_ENCODING = "gzip, deflate"


class _CappedBody(httpx2.AsyncByteStream):
    """A response body read through the caps: total bytes, bytes per line, and decompressed
    (never compressed) size. Raises ReplyRefused past a cap."""

    def __init__(self, inner: httpx2.AsyncByteStream, *, encoding: str, total_cap: int, line_cap: int) -> None:
        self._inner = inner
        self._encoding = encoding
        self._total_cap = total_cap
        self._line_cap = line_cap
        self._total = 0
        self._line = 0

    def _counted(self, piece: bytes) -> bytes:
        size = len(piece)
        self._total += size
        # Lines end at \n or \r (SSE allows either). Lines inside a piece are shorter than the
        # piece (at most 64 KiB), so only the line running on from earlier pieces and the one
        # left open can pass the line cap; the open one is counted on with the next piece.
        run_on = self._line
        last_end = max(piece.rfind(b"\n"), piece.rfind(b"\r"))
        self._line = run_on + size if last_end < 0 else size - last_end - 1
        if self._total <= self._total_cap and run_on + size <= self._line_cap:
            return piece  # the usual piece: no line can have reached the cap
        ends = [at for at in (piece.find(b"\n"), piece.find(b"\r")) if at >= 0]
        if self._total > self._total_cap or run_on + (min(ends) if ends else size) > self._line_cap:
            raise ReplyRefused(
                ErrorCode.UPSTREAM_TOO_LARGE,
                f"response body over {self._total_cap} bytes or a line over {self._line_cap} bytes",
            )
        return piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._encoding not in ("", "identity", "gzip", "deflate"):
            raise ReplyRefused(
                ErrorCode.UPSTREAM_DROPPED, f"content encoding {self._encoding[:40]!r} was not asked for"
            )
        # wbits 32+: zlib or gzip header, detected (servers send either for "deflate").
        decoder = None if self._encoding in ("", "identity") else zlib.decompressobj(zlib.MAX_WBITS | 32)
        try:
            async for raw in self._inner:
                if decoder is None:
                    yield self._counted(raw)
                    continue
                data = raw
                while data:
                    # Bounded output per step: a bomb is stopped at the cap, not after unpacking.
                    piece = decoder.decompress(data, _DECOMPRESS_PIECE)
                    data = decoder.unconsumed_tail
                    if piece:
                        yield self._counted(piece)
            if decoder is not None and (tail := decoder.flush()):
                yield self._counted(tail)
        except zlib.error:
            raise ReplyRefused(ErrorCode.UPSTREAM_DROPPED, "the compressed body does not decode") from None

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _response_cap(response: httpx2.Response) -> None:
    """httpx response hook: every response (each redirect hop too) is read through the caps,
    before anyone reads its body."""
    reply_cap = settings.LLM_MAX_REPLY_BYTES
    line_cap = LINE_CAP_FACTOR * reply_cap + _LINE_MARGIN
    # The stream's larger cap only for what is streamed to us piece by piece: a successful
    # reply to a POST (a chat completion). Error bodies, redirects and GETs (the key check's
    # model list) are read whole into memory, whatever type they say they are.
    streamed = (
        response.is_success
        and response.request.method == "POST"
        and response.headers.get("content-type", "").lower().startswith("text/event-stream")
    )
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding:
        del response.headers["content-encoding"]  # decoded by _CappedBody, not again by httpx
    assert isinstance(response.stream, httpx2.AsyncByteStream)  # an async client's response
    response.stream = _CappedBody(
        response.stream,
        encoding=encoding,
        line_cap=line_cap,
        total_cap=STREAM_CAP_FACTOR * reply_cap if streamed else line_cap,
    )


def http_client_for(
    *, user_supplied_url: bool, timeout: httpx2.Timeout, follow_redirects: bool = True
) -> httpx2.AsyncClient:
    """A new HTTP client (the caller closes it). User-typed URLs get the public-only transport;
    redirects are followed (as the SDK does) and each hop connects through the same check.
    Every client reads bodies through the caps (a hook, so proxy transports are capped too).
    Provider calls use `http_client_shared`; this is for one-off requests."""
    return httpx2.AsyncClient(
        transport=PooledTransport(public_only=user_supplied_url),
        # The environment's CA bundle (SSL_CERT_FILE) serves the site's own URLs. Its proxy
        # variables serve neither kind: the transport is given, so httpx mounts none (a proxy
        # would connect for a user-typed URL past the checks on every connection).
        trust_env=not user_supplied_url,
        timeout=timeout,
        follow_redirects=follow_redirects,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
        event_hooks={"response": [_response_cap]},
        limits=POOL_LIMITS,
    )


# The shared clients, per event loop (a client's connections belong to the loop that opened
# them): {id(loop): (loop, {user_supplied_url: client})}.
_shared_clients: dict[int, tuple[asyncio.AbstractEventLoop, dict[bool, httpx2.AsyncClient]]] = {}


def http_client_shared(*, user_supplied_url: bool) -> httpx2.AsyncClient:
    """This process's pooled client for provider calls, created on first use in each event
    loop; credentials and timeouts go per request. Never close it."""
    loop = asyncio.get_running_loop()
    entry = _shared_clients.get(id(loop))
    if entry is None or entry[0] is not loop:
        for key, (other, _clients) in list(_shared_clients.items()):
            if other.is_closed():  # a finished loop (tests, async_to_sync): its sockets are gone
                del _shared_clients[key]
        entry = _shared_clients[id(loop)] = (loop, {})
    client = entry[1].get(user_supplied_url)
    if client is None:
        timeout = httpx2.Timeout(settings.LLM_IDLE_TIMEOUT, connect=settings.LLM_CONNECT_TIMEOUT)
        client = entry[1][user_supplied_url] = http_client_for(user_supplied_url=user_supplied_url, timeout=timeout)
    return client
