"""The session of a websocket, for Channels' AuthMiddleware.

Channels' SessionMiddleware also wraps `send`, to save the session and set its cookie on an
HTTP response. A websocket never does either, but the wrapper still asked the session whether
it was modified or empty on every frame: a tenth of relaying a streamed chunk. This one puts
the session in the scope and passes `send` through untouched. A socket never writes the
session: logging out, a new password and expiry are read from the database each turn
(`apps.accounts.selectors.session_signs_in`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django.conf import settings


class WebsocketSessionMiddleware:
    """scope["session"]: the store for the session cookie's key (loaded on first use)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.store = import_module(settings.SESSION_ENGINE).SessionStore

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if "cookies" not in scope:
            raise ValueError("WebsocketSessionMiddleware needs Channels' CookieMiddleware in front of it.")
        session_key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
        return await self.inner(dict(scope, session=self.store(session_key)), receive, send)
