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
from channels.sessions import CookieMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402

from apps.conversations.routing import websocket_urlpatterns  # noqa: E402
from webchat.body_limit import BodyLimit  # noqa: E402
from webchat.hosts import websocket_allowed_origins  # noqa: E402
from webchat.websocket_origin import SameOriginValidator  # noqa: E402
from webchat.websocket_session import WebsocketSessionMiddleware  # noqa: E402

application = ProtocolTypeRouter(
    {
        # A body past REQUEST_MAX_BODY_BYTES is refused before Django spools it to disk.
        "http": BodyLimit(django_asgi_app, max_bytes=settings.REQUEST_MAX_BODY_BYTES),
        # Origin must be the site's own page: its host one of ALLOWED_HOSTS and its host and
        # port those the socket was opened on, or a CSRF trusted origin (a page on another site
        # or another port cannot open a socket with the student's cookies). Unlike Channels'
        # AllowedHostsOriginValidator, a "*" in ALLOWED_HOSTS never lets every origin in with
        # DEBUG off. The session cookie identifies the user (Channels' AuthMiddlewareStack,
        # with a session middleware that leaves each frame alone).
        "websocket": SameOriginValidator(
            CookieMiddleware(WebsocketSessionMiddleware(AuthMiddleware(URLRouter(websocket_urlpatterns)))),
            websocket_allowed_origins(allowed_hosts=settings.ALLOWED_HOSTS, debug=settings.DEBUG),
            trusted_origins=settings.CSRF_TRUSTED_ORIGINS,
            forwarded_host=settings.USE_X_FORWARDED_HOST,
        ),
    }
)
