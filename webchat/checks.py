"""System checks for the deployment (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register
from django.core.checks.security import base, csrf, sessions
from django.test.utils import override_settings
from django.utils.module_loading import import_string

from webchat.hosts import wildcard_hosts


@register(Tags.security, deploy=True)
def allowed_hosts_without_wildcards(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The web server refuses to start with such a list (webchat/settings.py); a deploy
    check says so too, before anyone tries."""
    wildcards = wildcard_hosts(settings.ALLOWED_HOSTS)
    if not wildcards:
        return []
    return [
        Error(
            f"ALLOWED_HOSTS contains {', '.join(wildcards)}: any Host header is accepted and any site may open a "
            "websocket to this one.",
            hint="List the site's host names (chat.school.example, or .school.example for a domain and its subdomains).",
            id="webchat.E001",
        )
    ]


# Django's deploy checks find its middlewares by their paths: security.W001-W003 say one is
# missing, and the checks of HSTS, the SSL redirect, nosniff, the referrer and opener
# policies, X-Frame-Options and the CSRF and session cookies run only when they find one.
# MIDDLEWARE names subclasses that run their hooks on the event loop
# (webchat/django_middleware.py), so W001-W003 are silenced in settings.py and all of these
# run here, with each subclass named by its Django base; a missing one is reported under our
# own id.
_DJANGO_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
)
_NAMED = {
    base.check_security_middleware: "webchat.W001",
    base.check_xframe_options_middleware: "webchat.W002",
    csrf.check_csrf_middleware: "webchat.W003",
}
_GATED = [
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_cookie_secure,
    sessions.check_session_cookie_secure,
    sessions.check_session_cookie_httponly,
]


def _as_django_names(middleware: list[str]) -> list[str]:
    named = []
    for path in middleware:
        cls = import_string(path)
        named.append(next((name for name in _DJANGO_MIDDLEWARE if issubclass(cls, import_string(name))), path))
    return named


@register(Tags.security, deploy=True)
def django_middleware_checks(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    found: list[CheckMessage] = []
    with override_settings(MIDDLEWARE=_as_django_names(settings.MIDDLEWARE)):
        for check, our_id in _NAMED.items():
            for message in check(app_configs):
                message.id = our_id
                found.append(message)
        for check in _GATED:
            found.extend(check(app_configs))
    return found
