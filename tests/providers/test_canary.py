"""A canary key goes through a whole session of student, teacher and admin use and never
appears in a page, a JSON or websocket frame, or a log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from apps.providers.models import ChatModel, Credential
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import FakeUpstream

CANARY = "sk-CANARY-7f3a9c1e5b2d4f60a8"
CANARY_PARTS = (CANARY, CANARY[3:-4])  # the whole key, and its body without the last four

pytestmark = pytest.mark.django_db(transaction=True)


def assert_clean(text: str, where: str) -> None:
    for part in CANARY_PARTS:
        assert part not in text, f"the key leaked into {where}"


async def test_canary_key_never_leaks(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream, caplog: Any, monkeypatch: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    teacher, admin, student = Client(), Client(), Client()
    await sync_to_async(teacher.force_login)(people.teacher)
    await sync_to_async(admin.force_login)(people.admin)
    await sync_to_async(student.force_login)(people.student)
    bodies: list[tuple[str, str]] = []

    def get(client: Client, url: str, **kwargs: Any) -> None:
        response = client.get(url, **kwargs)
        assert response.status_code == 200, url
        bodies.append((url, response.content.decode()))

    def post(client: Client, url: str, data: dict[str, Any]) -> None:
        response = client.post(url, data, follow=True)
        bodies.append((url, response.content.decode()))

    # The teacher adds the class key, looks at it, tests it, fails to replace it with junk.
    await sync_to_async(post)(
        teacher,
        reverse("keys"),
        {"provider": keyed_model.provider_id, "scope": "class", "classroom": people.classroom.pk, "api_key": CANARY},
    )
    credential = await Credential.objects.aget()
    await sync_to_async(get)(teacher, reverse("keys"))
    await sync_to_async(post)(teacher, reverse("key-test", args=[credential.pk]), {})
    await sync_to_async(post)(
        teacher,
        reverse("key-replace", args=[credential.pk]),
        {"api_key": "has spaces in it", "base_url": "http://10.0.0.1/"},
    )
    await sync_to_async(get)(teacher, reverse("providers"))

    # The student chats with it (once fine, once rejected), and browses.
    ws = await ws_connect(people.student)
    await ws.connect()
    frames = await ws_turn(ws, model="keyedai/keyed-model", content="hello")
    fake_upstream.accepted_bearers = {"not-the-canary"}
    frames += await ws_turn(ws, model="keyedai/keyed-model", content="again", conversation=frames[0]["conversation"])
    frames += await ws_turn(ws, model="keyedai/keyed-model", content="and again")
    await ws.disconnect()
    await sync_to_async(get)(student, reverse("conversation", args=[frames[0]["conversation"]]))
    await sync_to_async(get)(student, reverse("providers"))
    fake_upstream.accepted_bearers = None

    # The admin looks at everything about keys.
    for url in (
        reverse("admin:providers_credential_changelist"),
        reverse("admin:providers_credential_change", args=[credential.pk]),
        reverse("admin:conversations_conversation_change", args=[frames[0]["conversation"]]),
        reverse("admin:providers_provider_changelist"),
    ):
        await sync_to_async(get)(admin, url)
    await sync_to_async(post)(
        admin,
        reverse("admin:providers_credential_changelist"),
        {"action": "test_keys", "_selected_action": [credential.pk]},
    )

    assert fake_upstream.chat_requests()[0].headers["authorization"] == f"Bearer {CANARY}"  # it was really used
    for url, body in bodies:
        assert_clean(body, url)
    for frame in frames:
        assert_clean(str(frame), "a websocket frame")
    assert_clean(caplog.text, "the logs")
    assert any("…" + CANARY[-4:] in body for _, body in bodies)
