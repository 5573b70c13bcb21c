"""Receivers for Django's own auth events, which run no service of ours; and the one signal
this app sends for the apps above it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import Signal, receiver
from django.http import HttpRequest

from .models import User
from .sockets import CLOSE_SIGNED_OUT, user_sockets_close

# Someone else (a teacher's reset or roster import, an admin) set these users' passwords:
# what the old password let in ends. Sent inside the change's transaction with `users`, a
# list of User. The apps above accounts end what they granted (gateway: the API keys),
# without accounts importing them.
passwords_set_by_another = Signal()


@receiver(user_logged_out, dispatch_uid="accounts.close_sockets_on_logout")
def close_the_sessions_sockets_on_logout(
    sender: type, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    """Logging out (Django's LogoutView, the admin's logout) happens inside django.contrib.auth;
    this signal is the one hook it offers. Only the sockets of the session that ended close:
    the user's other browsers stay signed in."""
    session_key = request.session.session_key if request is not None and hasattr(request, "session") else None
    if user is None or not session_key:
        return
    user_sockets_close(user_ids=[user.pk], code=CLOSE_SIGNED_OUT, session_key=session_key)
