"""What a student reads when a request is refused or a reply ends badly, by error code."""
from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class ChatError(Exception):
    """A request refused before anyone was called. Nothing was written.

    Raised while a chat request is checked (params.py) and prepared (pipeline.py); every
    entry point turns it into its own error shape (a websocket error frame, an HTTP error).
    """

    def __init__(self, code: str, message: Promise | str, *, retry_after: int | None = None,
                 reset_at: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.reset_at = reset_at


# What a student reads when an upstream fault ends a reply, by code.
UPSTREAM_MESSAGES: dict[str, Promise] = {
    "upstream_rate_limited": _("The provider is busy (rate limited). Wait a moment and try again."),
    "upstream_auth_failed": _("The class key was rejected by the provider. Tell your teacher."),
    "upstream_blocked": _("The provider's address is on a private network, which is not allowed."),
    "upstream_timeout": _("The provider took too long to answer. Try again."),
    "upstream_unreachable": _("The provider could not be reached. Try again later."),
    "upstream_dropped": _("The provider's reply broke off (the connection dropped, or it sent something that is not "
                          "a valid reply). What arrived was saved."),
    "upstream_too_large": _("The provider's reply was longer than this site allows, so it was cut off. What arrived "
                            "was saved."),
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


