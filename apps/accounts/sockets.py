"""What accounts tells the open chat sockets when a sign-in or a class place ends.

The chat consumer lives in `conversations`, which accounts may not import; the two meet on
the channel layer instead. Every chat socket joins its user's group (`user_socket_group`)
and handles the `sockets.close` message defined here; accounts sends that message after a
logout, a deactivation, a password change or reset, a removal from a class or a class
being archived. Through Redis the message reaches sockets in every ASGI process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils.crypto import salted_hmac

# Websocket close codes (4000-4999 are the application's own). The chat page reloads on
# both: a signed-out page then shows the login form, a changed class shows what is left.
CLOSE_SIGNED_OUT = 4401  # no session, or it ended: log in again
CLOSE_ACCESS_CHANGED = 4403  # still signed in, but a class was archived or left


class SocketsClose(TypedDict):
    """Channel-layer message to a user's group: close your sockets with `code`."""

    type: Literal["sockets.close"]
    code: int
    # "" for every socket of the user; else the tag (session_tag) of the one session whose
    # sockets close. A tag, not the key: the key is a bearer secret, and this message sits
    # in Redis.
    session: str


def user_socket_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_tag(session_key: str) -> str:
    return salted_hmac("webchat.chat-socket-session", session_key).hexdigest()[:32]


def user_sockets_close(*, user_ids: Iterable[int], code: int, session_key: str | None = None) -> None:
    """Once the current transaction commits, close these users' open chat sockets (only
    those opened with `session_key`, when given); a turn they are running stops and keeps
    what arrived. Sent on commit: a rolled-back change closes nothing, and a socket that
    reconnects at once already sees the change.

    Side effects: one `sockets.close` channel-layer message per user, after commit. A
    channel layer that is down is logged, not raised: the change itself has been made, and
    every turn checks the session and the class again anyway.
    """
    ids = sorted(set(user_ids))
    if not ids:
        return
    message: SocketsClose = {
        "type": "sockets.close",
        "code": code,
        "session": session_tag(session_key) if session_key else "",
    }

    async def send_all() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for user_id in ids:
            await layer.group_send(user_socket_group(user_id), message)

    def send() -> None:
        async_to_sync(send_all)()

    transaction.on_commit(send, robust=True)
