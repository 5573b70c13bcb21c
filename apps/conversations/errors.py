"""What a student reads when a reply ends badly, by error code."""
from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# What a student reads when an upstream fault ends a reply, by code.
UPSTREAM_MESSAGES: dict[str, Promise] = {
    "upstream_rate_limited": _("The provider is busy (rate limited). Wait a moment and try again."),
    "upstream_auth_failed": _("The class key was rejected by the provider. Tell your teacher."),
    "upstream_blocked": _("The provider's address is on a private network, which is not allowed."),
    "upstream_timeout": _("The provider took too long to answer. Try again."),
    "upstream_unreachable": _("The provider could not be reached. Try again later."),
    "upstream_dropped": _("The connection to the provider dropped in the middle of the reply. What arrived was saved."),
    "upstream_rejected": _("The provider refused this request."),
    "upstream_error": _("The provider had an error. Try again."),
    "internal_error": _("Something went wrong on the server. What arrived was saved."),
    "worker_lost": _("The server restarted while this reply was being written."),
}
OWN_KEY_REJECTED = _("Your own key was rejected by the provider. Check it on the API keys page.")


def upstream_message(*, code: str, credential_scope: str) -> str:
    if code == "upstream_auth_failed" and credential_scope == "user":
        return str(OWN_KEY_REJECTED)
    return str(UPSTREAM_MESSAGES.get(code, UPSTREAM_MESSAGES["upstream_error"]))


