"""What a student reads when a reply ends badly, by error code (webchat.errors.ErrorCode)."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from webchat.errors import ErrorCode

# What a student reads when an upstream fault ends a reply, by code.
UPSTREAM_MESSAGES: dict[str, Promise] = {
    ErrorCode.UPSTREAM_RATE_LIMITED: _("The provider is busy (rate limited). Wait a moment and try again."),
    ErrorCode.UPSTREAM_AUTH_FAILED: _("The class key was rejected by the provider. Tell your teacher."),
    ErrorCode.UPSTREAM_BLOCKED: _("The provider's address is on a private network, which is not allowed."),
    ErrorCode.UPSTREAM_TIMEOUT: _("The provider took too long to answer. Try again."),
    ErrorCode.UPSTREAM_UNREACHABLE: _("The provider could not be reached. Try again later."),
    ErrorCode.UPSTREAM_DROPPED: _(
        "The provider's reply broke off (the connection dropped, or it sent something that is not a valid reply)."
    ),
    ErrorCode.UPSTREAM_TOO_LARGE: _(
        "The provider's reply, with any thinking before it, was longer than its length allows, so it was cut off."
    ),
    ErrorCode.UPSTREAM_REJECTED: _("The provider refused this request."),
    ErrorCode.UPSTREAM_ERROR: _("The provider had an error. Try again."),
    ErrorCode.INTERNAL_ERROR: _("Something went wrong on the server."),
    ErrorCode.WORKER_LOST: _("The server restarted while this reply was being written."),
}
OWN_KEY_REJECTED = _("Your own key was rejected by the provider. Check it on the Provider keys page.")


def upstream_message(*, code: str, credential_scope: str, kept: bool = False) -> str:
    """`kept`: part of the reply arrived before the fault and was saved with it (a chat
    reply; an API request keeps nothing)."""
    if code == ErrorCode.UPSTREAM_AUTH_FAILED and credential_scope == "user":
        return str(OWN_KEY_REJECTED)
    message = str(UPSTREAM_MESSAGES.get(code, UPSTREAM_MESSAGES[ErrorCode.UPSTREAM_ERROR]))
    return _("%(fault)s What arrived was saved.") % {"fault": message} if kept else message
