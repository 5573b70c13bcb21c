"""A finished or failed reply's frame carries the message as the chat page renders it after a
reload (_message.html), so live and reloaded are one rendering; and the Markdown the page
renders live follows the server's allow-list."""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from apps.conversations.rendering import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, markdown_policy, reply_html
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


def chat_page(user: Any, conversation_id: int, language: str) -> str:
    client = Client()
    client.force_login(user)
    client.cookies["django_language"] = language
    return client.get(reverse("conversation", args=[conversation_id])).content.decode()


async def test_a_finished_reply_comes_as_the_page_shows_it_after_a_reload(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["Some **bold**\n\n", "```python\nprint(1)\n```\n"], usage=(7, 9))
    ws = await ws_connect(people.student)
    await ws.connect()
    frames = await ws_turn(ws, model="fakeai/fake-model", content="Show me")
    done = frames[-1]
    assert done["type"] == "chat.done"
    assert done["message_html"].startswith('<article class="msg msg-assistant status-complete"')
    assert "7 in · 9 out tokens" in done["message_html"]
    page = await sync_to_async(chat_page)(people.student, frames[0]["conversation"], "en")
    assert done["message_html"].strip() in page
    await ws.disconnect()


async def test_a_failed_reply_comes_with_its_badge_in_the_students_language(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_MAX_ATTEMPTS = 1
    fake_upstream.push(Behaviour(status=500))
    ws = await ws_connect(people.student, language="zh-hans")
    await ws.connect()
    frames = await ws_turn(ws, model="fakeai/fake-model", content="Hello?")
    error = frames[-1]
    assert error["type"] == "chat.error" and error["code"] == "upstream_error"
    assert 'class="badge badge-failed"' in error["message_html"]
    page = await sync_to_async(chat_page)(people.student, frames[0]["conversation"], "zh-hans")
    assert error["message_html"].strip() in page
    await ws.disconnect()


def test_a_fenced_code_block_keeps_its_language_for_the_label() -> None:
    html = reply_html("```python\nprint(1)\n```")
    assert '<div class="highlight"><pre><span></span><code class="language-python">' in html
    assert (
        re.search(r"<[^>]*onclick", reply_html('```x" onclick="alert(1)\nx\n```')) is None
    )  # text, never an attribute


def test_the_live_renderer_gets_the_servers_allow_list() -> None:
    policy = markdown_policy()
    assert set(policy["tags"]) == ALLOWED_TAGS and "img" not in policy["tags"] and "script" not in policy["tags"]
    assert policy["attributes"] == {tag: sorted(names) for tag, names in ALLOWED_ATTRIBUTES.items()}
    assert policy["schemes"] == ["http", "https", "mailto"]
