"""System checks for the deployment (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

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
