"""An open chat socket lives only as long as the sign-in and the class place behind it.

Real ASGI application, real views (logout, admin, teacher pages) driven by Django's test
client, the real channel layer, the fake upstream over HTTP. "Nothing served" means: the
upstream was not called and no message or ledger row was written.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_client_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.accounts.models import Enrollment, User
from apps.accounts.services import enrollment_add
from apps.billing.models import LedgerEntry
from apps.conversations import socket_slots
from apps.conversations.models import Message
from apps.conversations.socket_slots import socket_slot_take, socket_slots_forget
from tests.conftest import ORIGIN, PASSWORD, LiveServer, People, socket_open, ws_frames_until, ws_turn
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "fakeai/fake-model"


async def signed_in(user: User) -> Client:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return client


async def open_socket(client: Client) -> WebsocketCommunicator:
    """/ws/chat/ through the real ASGI application, with `client`'s session cookie."""
    from webchat.asgi import application

    cookie = f"sessionid={client.cookies['sessionid'].value}; django_language=en"
    ws = socket_open(
        application, "/ws/chat/", headers=[(b"origin", ORIGIN), (b"host", b"127.0.0.1"), (b"cookie", cookie.encode())]
    )
    accepted, _ = await ws.connect()
    assert accepted
    return ws


async def close_code(ws: WebsocketCommunicator) -> tuple[int, list[dict[str, Any]]]:
    """Read until the server closes the socket: the close code, and the frames before it."""
    frames = []
    while True:
        output = await ws.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output["code"], frames
        frames.append(json.loads(output["text"]))


async def served_nothing(upstream: FakeUpstream, *, messages: int, ledger: int) -> bool:
    return (
        upstream.chat_requests() == []
        and await Message.objects.acount() == messages
        and await LedgerEntry.objects.acount() == ledger
    )


async def post(client: Client, path: str, data: dict[str, Any] | None = None) -> int:
    response = await sync_to_async(client.post)(path, data or {})
    return response.status_code


# --- Closed when the sign-in ends --------------------------------------------------------


async def test_logout_closes_that_sessions_socket_with_4401_and_the_other_browser_stays(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    laptop, phone = await signed_in(people.student), await signed_in(people.student)
    laptop_ws, phone_ws = await open_socket(laptop), await open_socket(phone)

    assert await post(laptop, "/accounts/logout/") == 302

    assert (await close_code(laptop_ws))[0] == 4401
    frames = await ws_turn(phone_ws, model=MODEL, content="still signed in here?")
    assert frames[-1]["type"] == "chat.done"
    await phone_ws.disconnect()


async def test_a_logout_the_moment_the_socket_opens_still_closes_it(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket is in its user's group before the page sees it open, however slow the
    channel layer (Redis on a busy machine) is to take the membership."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    group_add = layer.group_add

    async def slow_group_add(group: str, channel: str) -> None:
        await asyncio.sleep(0.3)
        await group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", slow_group_add)
    client = await signed_in(people.student)
    ws = await open_socket(client)

    assert await post(client, "/accounts/logout/") == 302

    assert (await close_code(ws))[0] == 4401


async def test_admin_deactivating_a_student_closes_their_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))
    admin = await signed_in(people.admin)
    joined = timezone.localtime(people.student.date_joined)
    form = {
        "username": people.student.username,
        "role": "student",
        "display_name": "Xiaoming",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "first_name": "",
        "last_name": "",
        "email": "",
        "_save": "1",
    }
    # is_active left out: the box is unticked.

    assert await post(admin, f"/admin/accounts/user/{people.student.pk}/change/", form) == 302

    assert (await close_code(ws))[0] == 4401
    assert (await User.objects.aget(pk=people.student.pk)).is_active is False


async def test_admin_setting_a_students_password_closes_their_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))
    admin = await signed_in(people.admin)

    status = await post(
        admin,
        f"/admin/accounts/user/{people.student.pk}/password/",
        {"password1": "a-brand-new-secret-77", "password2": "a-brand-new-secret-77", "usable_password": "true"},
    )

    assert status == 302
    assert (await close_code(ws))[0] == 4401


async def test_changing_your_own_password_in_the_admin_closes_your_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    admin = await signed_in(people.admin)
    ws = await open_socket(await signed_in(people.admin))
    page = await sync_to_async(admin.get)("/admin/password_change/")
    assert page.status_code == 200 and b'name="old_password"' in page.content  # Django's page, as before

    status = await post(
        admin,
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": "a-brand-new-secret-77", "new_password2": "a-brand-new-secret-77"},
    )

    assert status == 302
    assert (await close_code(ws))[0] == 4401
    # Still Django's page: the admin stays signed in with the new password.
    assert (await sync_to_async(admin.get)("/admin/password_change/done/")).status_code == 200


async def test_teacher_resetting_a_students_password_closes_their_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))
    classmate_ws = await open_socket(await signed_in(people.classmate))
    teacher = await signed_in(people.teacher)

    status = await post(teacher, f"/classes/{people.classroom.pk}/roster/reset/", {"student": [people.student.pk]})

    assert status == 200  # the CSV of new passwords
    assert (await close_code(ws))[0] == 4401
    assert (await ws_turn(classmate_ws, model=MODEL, content="not reset"))[-1]["type"] == "chat.done"
    await classmate_ws.disconnect()


# --- Closed when the class place ends ----------------------------------------------------


async def test_removal_from_the_class_closes_with_4403_and_its_conversation_takes_no_more_turns(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    student = await signed_in(people.student)
    ws = await open_socket(student)
    conversation = (await ws_turn(ws, model=MODEL, content="before"))[0]["conversation"]
    fake_upstream.reset()
    messages, ledger = await Message.objects.acount(), await LedgerEntry.objects.acount()
    teacher = await signed_in(people.teacher)

    assert await post(teacher, f"/classes/{people.classroom.pk}/roster/{people.student.pk}/remove/") == 302

    assert (await close_code(ws))[0] == 4403
    again = await open_socket(student)  # still signed in: the page reconnects
    error = (await ws_turn(again, model=MODEL, content="after", conversation=conversation))[-1]
    assert (error["type"], error["code"]) == ("chat.error", "class_closed")
    assert await served_nothing(fake_upstream, messages=messages, ledger=ledger)
    await again.disconnect()


async def test_archiving_the_class_closes_its_students_sockets_and_its_conversations_take_no_more_turns(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    student = await signed_in(people.student)
    ws = await open_socket(student)
    other_ws = await open_socket(await signed_in(people.other_student))
    conversation = (await ws_turn(ws, model=MODEL, content="before"))[0]["conversation"]
    fake_upstream.reset()
    messages, ledger = await Message.objects.acount(), await LedgerEntry.objects.acount()
    teacher = await signed_in(people.teacher)

    assert await post(teacher, f"/classes/{people.classroom.pk}/do/archive/") == 302

    assert (await close_code(ws))[0] == 4403
    again = await open_socket(student)
    await again.send_json_to({"type": "chat.regenerate", "conversation": conversation, "model": MODEL})
    error = (await ws_frames_until(again, {"chat.done", "chat.error"}))[-1]
    assert error["code"] == "class_closed"
    assert await served_nothing(fake_upstream, messages=messages, ledger=ledger)
    # A student of another class is not touched.
    assert await other_ws.receive_nothing(timeout=0.2)
    await again.disconnect()
    await other_ws.disconnect()


async def test_a_conversation_begun_in_no_class_takes_no_more_turns_once_the_student_is_in_one(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    """Else it would escape the class's models, quota and instructions (and its usage)."""
    teacher = await signed_in(people.teacher)
    assert await post(teacher, f"/classes/{people.classroom.pk}/roster/{people.student.pk}/remove/") == 302
    student = await signed_in(people.student)
    ws = await open_socket(student)
    conversation = (await ws_turn(ws, model=MODEL, content="in no class"))[0]["conversation"]
    assert (await ws_turn(ws, model=MODEL, content="still none", conversation=conversation))[-1]["type"] == "chat.done"
    await ws.disconnect()

    await sync_to_async(enrollment_add)(classroom=people.classroom, student=people.student)
    fake_upstream.reset()
    messages, ledger = await Message.objects.acount(), await LedgerEntry.objects.acount()

    again = await open_socket(student)
    error = (await ws_turn(again, model=MODEL, content="in the class now", conversation=conversation))[-1]
    assert (error["type"], error["code"]) == ("chat.error", "class_closed")
    assert await served_nothing(fake_upstream, messages=messages, ledger=ledger)
    # A new conversation is the class's, and so is its bill.
    done = await ws_turn(again, model=MODEL, content="a new one")
    assert done[-1]["type"] == "chat.done"
    entry = await LedgerEntry.objects.alatest("id")
    assert entry.classroom_id == people.classroom.pk
    await again.disconnect()
    # Its page shows the class's meter, whose rules a new conversation follows.
    page = await sync_to_async(student.get)(f"/c/{conversation}/")
    assert page.context["classroom"] == people.classroom


async def _classroom_admin_form(people: People, *, archived: bool, remove: User | None) -> dict[str, Any]:
    """The admin's class change form as the browser would post it, with the changes asked for."""
    enrollments = [e async for e in Enrollment.objects.filter(classroom=people.classroom).order_by("pk")]
    form: dict[str, Any] = {
        "name": people.classroom.name,
        "teachers": [people.teacher.pk, people.co_teacher.pk],
        "join_code": "",
        "join_code_expires_at_0": "",
        "join_code_expires_at_1": "",
        "system_prompt": "",
        "max_reply_tokens": "",
        "default_model": "",
        "enrollments-TOTAL_FORMS": len(enrollments),
        "enrollments-INITIAL_FORMS": len(enrollments),
        "enrollments-MIN_NUM_FORMS": 0,
        "enrollments-MAX_NUM_FORMS": 1000,
        "_save": "1",
    }
    if archived:
        form["archived"] = "on"
    for index, enrollment in enumerate(enrollments):
        form |= {
            f"enrollments-{index}-id": enrollment.pk,
            f"enrollments-{index}-classroom": people.classroom.pk,
            f"enrollments-{index}-student": enrollment.student_id,
        }
        if remove is not None and enrollment.student_id == remove.pk:
            form[f"enrollments-{index}-DELETE"] = "on"
    return form


async def test_an_admin_taking_a_student_out_of_a_class_closes_only_their_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))
    classmate_ws = await open_socket(await signed_in(people.classmate))
    admin = await signed_in(people.admin)
    form = await _classroom_admin_form(people, archived=False, remove=people.student)

    assert await post(admin, f"/admin/accounts/classroom/{people.classroom.pk}/change/", form) == 302

    assert (await close_code(ws))[0] == 4403
    assert not await Enrollment.objects.filter(student=people.student, classroom=people.classroom).aexists()
    assert await classmate_ws.receive_nothing(timeout=0.2)
    await classmate_ws.disconnect()


async def test_an_admin_archiving_a_class_closes_its_students_sockets(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    sockets = [await open_socket(await signed_in(people.student)), await open_socket(await signed_in(people.classmate))]
    admin = await signed_in(people.admin)
    form = await _classroom_admin_form(people, archived=True, remove=None)

    assert await post(admin, f"/admin/accounts/classroom/{people.classroom.pk}/change/", form) == 302

    assert [(await close_code(ws))[0] for ws in sockets] == [4403, 4403]


# --- Every turn checks again, even if no close message arrived --------------------------


async def _refused_as_signed_out(ws: WebsocketCommunicator, upstream: FakeUpstream) -> None:
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": MODEL, "content": "one more?"})
    code, frames = await close_code(ws)
    assert code == 4401
    assert [(f["type"], f["code"]) for f in frames] == [("chat.error", "signed_out")]
    assert await served_nothing(upstream, messages=0, ledger=0)


async def test_a_turn_on_a_socket_whose_session_was_deleted_is_refused(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    client = await signed_in(people.student)
    ws = await open_socket(client)
    await Session.objects.filter(session_key=client.cookies["sessionid"].value).adelete()

    await _refused_as_signed_out(ws, fake_upstream)


async def test_a_turn_after_the_password_changed_behind_the_sockets_back_is_refused(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))

    def change_password_directly() -> None:  # e.g. `manage.py changepassword`: no service runs
        user = User.objects.get(pk=people.student.pk)
        user.set_password("changed-elsewhere-55")
        user.save()

    await sync_to_async(change_password_directly)()

    await _refused_as_signed_out(ws, fake_upstream)


async def test_a_turn_after_the_account_was_deactivated_behind_the_sockets_back_is_refused(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await open_socket(await signed_in(people.student))
    await User.objects.filter(pk=people.student.pk).aupdate(is_active=False)

    await _refused_as_signed_out(ws, fake_upstream)


# --- At most CHAT_MAX_SOCKETS_PER_USER at once ------------------------------------------


async def test_a_sixth_socket_is_refused_with_4429_and_a_closed_one_frees_its_place(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, settings: Any
) -> None:
    assert settings.CHAT_MAX_SOCKETS_PER_USER == 5
    await sync_to_async(socket_slots_forget)(user_id=people.student.pk)
    client = await signed_in(people.student)
    sockets = [await open_socket(client) for _ in range(5)]
    classmate_ws = await open_socket(await signed_in(people.classmate))  # the cap is per user

    sixth = await open_socket(client)
    code, frames = await close_code(sixth)

    assert code == 4429
    assert [(f["type"], f["code"]) for f in frames] == [("chat.error", "too_many_sockets")]
    await sockets.pop().disconnect()
    replacement = await open_socket(client)
    assert (await ws_turn(replacement, model=MODEL, content="room again"))[-1]["type"] == "chat.done"
    for ws in [*sockets, replacement, classmate_ws]:
        await ws.disconnect()


async def test_places_of_sockets_that_vanished_without_closing_expire(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(socket_slots_forget)(user_id=people.student.pk)
    client = await signed_in(people.student)
    # Five sockets as if their process died: their places are neither given back nor
    # refreshed (that happens every SLOT_REFRESH seconds, far beyond this test).
    vanished = [await open_socket(client) for _ in range(5)]
    assert (await close_code(await open_socket(client)))[0] == 4429
    # The process died SLOT_TTL - 1 s after their last refresh: one second is left on each
    # place, in real time (Redis expires keys by its own clock, which no time machine moves).
    # Set here, after the five opened: a one-second SLOT_TTL while they open would let the
    # first place expire before the sixth socket asks, on a busy machine.
    for slot in range(settings.CHAT_MAX_SOCKETS_PER_USER):
        assert await cache.atouch(socket_slots._slot_key(people.student.pk, slot), timeout=1)

    await asyncio.sleep(1.5)

    ws = await open_socket(client)
    assert await ws.receive_nothing(timeout=0.2)  # not closed: it took an expired place
    for socket in [*vanished, ws]:
        await socket.disconnect()


def test_a_place_taken_lives_slot_ttl_seconds(people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket_slots, "SLOT_TTL", 1)
    socket_slots_forget(user_id=people.student.pk)
    taken = [socket_slot_take(user_id=people.student.pk, channel_name=f"gone-{n}") for n in range(5)]
    assert taken == [0, 1, 2, 3, 4]
    assert socket_slot_take(user_id=people.student.pk, channel_name="sixth") is None

    time.sleep(1.5)

    assert socket_slot_take(user_id=people.student.pk, channel_name="sixth") == 0


# --- What a browser sees, through a real server -----------------------------------------


async def _live_socket(server: LiveServer, *, cookie: str = "", origin: str = "") -> ClientConnection:
    return await ws_client_connect(
        f"ws://127.0.0.1:{server.port}/ws/chat/",
        proxy=None,
        origin=origin or server.url,
        additional_headers={"Cookie": cookie} if cookie else None,
    )


async def test_a_browser_without_a_session_sees_close_code_4401_not_a_refused_handshake(live_asgi: LiveServer) -> None:
    socket = await _live_socket(live_asgi)

    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), timeout=5)
    await socket.close()

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_page_on_another_site_still_cannot_open_a_socket(live_asgi: LiveServer, people: People) -> None:
    client = await signed_in(people.student)

    with pytest.raises(InvalidStatus) as refused:
        await _live_socket(
            live_asgi, cookie=f"sessionid={client.cookies['sessionid'].value}", origin="https://evil.example"
        )

    assert refused.value.response.status_code == 403


async def test_logging_out_over_http_closes_the_browsers_socket(live_asgi: LiveServer, people: People) -> None:
    client = await signed_in(people.student)
    csrf = "a" * 32  # the double-submit pair Django's form and cookie would carry
    cookie = f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}"
    socket = await _live_socket(live_asgi, cookie=cookie)

    def log_out() -> int:
        request = urllib.request.Request(
            f"{live_asgi.url}/accounts/logout/",
            method="POST",
            data=f"csrfmiddlewaretoken={csrf}".encode(),
            headers={"Cookie": cookie, "Origin": live_asgi.url, "Content-Type": "application/x-www-form-urlencoded"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        try:
            return opener.open(request, timeout=5).status
        except urllib.error.HTTPError as response:
            return response.code

    assert await asyncio.to_thread(log_out) == 302
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


async def _consumer_run(people: People, send: Any, *frames: dict[str, Any]) -> None:
    """The chat consumer run straight under a server whose `send` is given: a signed-in
    student's socket, the messages `frames` from the client, then whatever `send` raises."""
    from django.contrib.auth import HASH_SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from apps.conversations.consumers import ChatConsumer

    session = SessionStore()
    session[HASH_SESSION_KEY] = people.student.get_session_auth_hash()
    await sync_to_async(session.create)()
    scope = {"type": "websocket", "path": "/ws/chat/", "headers": [], "user": people.student, "session": session}
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for frame in ({"type": "websocket.connect"}, *frames):
        await incoming.put(frame)
    await ChatConsumer.as_asgi()(scope, incoming.get, send)


def _places_free(people: People) -> int:
    taken = [socket_slot_take(user_id=people.student.pk, channel_name=f"probe-{n}") for n in range(10)]
    socket_slots_forget(user_id=people.student.pk)
    return sum(slot is not None for slot in taken)


async def test_a_handshake_the_client_reset_gives_its_place_back(people: People) -> None:
    """The client reset the connection before the server could accept it: the server's
    send raises, Channels calls no `disconnect`, and the place came back only after 90 s."""
    from uvicorn.protocols.utils import ClientDisconnected

    async def send(message: dict[str, Any]) -> None:
        raise ClientDisconnected()

    with pytest.raises(OSError):
        await _consumer_run(people, send)
    assert await sync_to_async(_places_free)(people) == settings.CHAT_MAX_SOCKETS_PER_USER


async def test_a_send_after_the_server_closed_the_socket_itself_ends_nothing_and_gives_the_place_back(
    people: People,
) -> None:
    """uvicorn closes a socket whose client stopped answering pings, and raises RuntimeError
    for a send after that: the frames stop, the consumer does not die, its place comes back."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")
        sent.append(message)

    await _consumer_run(
        people, send, {"type": "websocket.receive", "text": "not json"}, {"type": "websocket.disconnect", "code": 1006}
    )
    assert [message["type"] for message in sent] == ["websocket.accept"]
    assert await sync_to_async(_places_free)(people) == settings.CHAT_MAX_SOCKETS_PER_USER
