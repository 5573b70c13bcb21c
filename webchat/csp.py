"""The Content-Security-Policy header (policy: CONTENT_SECURITY_POLICY in webchat/settings.py)."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from webchat.django_middleware import HooksOnTheLoop


class ContentSecurityPolicyMiddleware(HooksOnTheLoop, CSPMiddleware):
    """django-csp's middleware, plus this host's websocket URL in connect-src.

    CSP level 3 browsers let `'self'` cover ws(s):// to the same host; level 2 ones (the
    older iPads schools still use) do not, and would refuse the chat socket. So the socket's
    own origin is named too: never another host, since it is the Host Django has already
    checked against ALLOWED_HOSTS."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request=request, response=response, report_only=report_only)
        if report_only:
            return parts
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts  # the 400 for a host not in ALLOWED_HOSTS names no socket
        socket = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), socket]
        parts.update = update
        return parts
