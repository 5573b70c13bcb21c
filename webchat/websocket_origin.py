"""Which pages may open the chat socket with a student's cookies.

Channels' OriginValidator compares the Origin's host name with ALLOWED_HOSTS and ignores its
port, so a page served from another port of the same host (a student's own server on
127.0.0.1:5000 in class, another service on the school's host) could open a socket as the
student. A browser sends Origin on every websocket handshake, and it is what Django's CSRF
check compares for forms: the page's own scheme, host and port. The socket is held to the
same rule: the Origin names the host and port the socket was opened on (its Host header), or
is one of CSRF_TRUSTED_ORIGINS (a site behind a proxy that rewrites Host), and its host is
one of the allowed hosts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import SplitResult, urlsplit

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.http.request import is_same_domain

_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _split(url: str) -> SplitResult | None:
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parsed if parsed.hostname else None


def _host_port(parsed: SplitResult, scheme: str) -> tuple[str, int | None]:
    return parsed.hostname or "", parsed.port or _DEFAULT_PORTS.get(scheme)


def origin_is_trusted(origin: SplitResult, trusted_origins: Iterable[str]) -> bool:
    """CSRF_TRUSTED_ORIGINS as Django's CSRF check reads them: "scheme://host[:port]"
    exactly, or "scheme://*.domain[:port]" for the domain's subdomains on that port."""
    for entry in trusted_origins:
        trusted = urlsplit(entry)
        if trusted.scheme != origin.scheme:
            continue
        if "*" in trusted.netloc:
            if is_same_domain(origin.netloc, trusted.netloc[trusted.netloc.index("*") + 1 :]):
                return True
        elif (trusted_host := _split(entry)) and _host_port(trusted_host, trusted.scheme) == _host_port(
            origin, origin.scheme
        ):
            return True
    return False


class SameOriginValidator(OriginValidator):
    """Channels' host check, then the port and the host as the page's own (see the module)."""

    def __init__(
        self,
        application: Any,
        allowed_origins: list[str],
        *,
        trusted_origins: Iterable[str] = (),
        forwarded_host: bool = False,
    ) -> None:
        super().__init__(application, allowed_origins)
        self.trusted_origins = list(trusted_origins)
        self.forwarded_host = forwarded_host

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not self.same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await super().__call__(scope, receive, send)

    def same_origin(self, scope: dict[str, Any]) -> bool:
        origin = _split(_header(scope, b"origin") or "")
        if origin is None:
            return False
        if origin_is_trusted(origin, self.trusted_origins):
            return True
        host = (_header(scope, b"x-forwarded-host") if self.forwarded_host else None) or _header(scope, b"host")
        # the Host header's port; none means the default port of the scheme the page was on
        socket_host = _split(f"{origin.scheme}://{(host or '').split(',')[0].strip()}")
        return socket_host is not None and _host_port(socket_host, origin.scheme) == _host_port(origin, origin.scheme)
