"""ASGI entry point: HTTP goes to Django, websockets to the Channels routes."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webchat.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from webchat.startup import refuse_to_start_if_misconfigured  # noqa: E402

refuse_to_start_if_misconfigured()

from channels.auth import AuthMiddleware  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.conversations.routing import websocket_urlpatterns  # noqa: E402
from webchat.hosts import websocket_allowed_origins  # noqa: E402
from webchat.websocket_session import WebsocketSessionMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Origin must match ALLOWED_HOSTS (a page on another site cannot open a socket with
        # the student's cookies); the session cookie identifies the user (Channels'
        # AuthMiddlewareStack, with a session middleware that leaves each frame alone).
        # Unlike Channels' AllowedHostsOriginValidator, a "*" there never lets every origin in
        # with DEBUG off.
        "websocket": OriginValidator(
            CookieMiddleware(WebsocketSessionMiddleware(AuthMiddleware(URLRouter(websocket_urlpatterns)))),
            websocket_allowed_origins(allowed_hosts=settings.ALLOWED_HOSTS, debug=settings.DEBUG),
        ),
    }
)
