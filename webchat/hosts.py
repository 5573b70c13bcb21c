"""Which host names this site answers to, and which origins may open its websockets.

A wildcard in ALLOWED_HOSTS turns off Django's Host header check and, through the websocket
origin check that reuses the list, lets a page on any site open a socket with a student's
cookies. Production refuses it (webchat/settings.py, the deploy check in webchat/checks.py),
and the origin check below ignores it even if it were configured.

No Django imports at module level: webchat/settings.py uses this module while it loads.
"""

from __future__ import annotations

from collections.abc import Iterable

# What Channels' AllowedHostsOriginValidator (and Django itself) allow while DEBUG is on and
# ALLOWED_HOSTS is empty.
DEBUG_LOCAL_HOSTS = ["localhost", "127.0.0.1", "[::1]"]


def wildcard_hosts(hosts: Iterable[str]) -> list[str]:
    """The entries that match more than the site's own names: "*" alone or any entry holding
    a "*". A leading dot (".school.example": that domain and its subdomains) is bounded and
    fine."""
    return [host for host in hosts if "*" in host]


def websocket_allowed_origins(*, allowed_hosts: Iterable[str], debug: bool) -> list[str]:
    """The host patterns a websocket's Origin must match: ALLOWED_HOSTS, with the wildcard
    entries dropped unless DEBUG is on (a laptop demo served to a classroom network may use
    "*"; production never lets every origin in, whatever is configured)."""
    hosts = list(allowed_hosts)
    if debug:
        return hosts or list(DEBUG_LOCAL_HOSTS)
    return [host for host in hosts if host not in wildcard_hosts(hosts)]
