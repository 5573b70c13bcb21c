"""Class settings reach the chat: allowed models, class instructions, reply length;
students' conversation tools; teachers' audited reads; sanitised Markdown."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from apps.accounts.models import AuditEvent
from apps.billing.models import Period
from apps.billing.services import quota_policy_set
from apps.conversations.models import Conversation, Message
from apps.conversations.rendering import reply_html
from apps.conversations.services import turn_begin
from apps.providers.models import ChatModel
from apps.providers.services import class_models_set
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import FakeUpstream

XSS = (
    'Hi <script>alert("x")</script><img src=x onerror=alert(1)> <a href="javascript:alert(2)">link</a> '
    '<iframe src="https://evil.example"></iframe>\n\n```python\nprint("ok")\n```'
)


async def turn(user: Any, **send: Any) -> list[dict[str, Any]]:
    ws = await ws_connect(user)
    await ws.connect()
    try:
        return await ws_turn(ws, **send)
    finally:
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_class_allowlist_instructions_and_reply_length_reach_the_call(
    people: People, fake_model: ChatModel, demo_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    classroom = people.classroom
    classroom.system_prompt = "You tutor 12-year-olds. Be brief."
    classroom.max_reply_tokens = 200
    await classroom.asave()
    await sync_to_async(class_models_set)(classroom=classroom, allowed_models=[fake_model], default_model=None)

    refused = await turn(people.student, model="demo/demo-tutor", content="hi")
    frames = await turn(people.student, model="fakeai/fake-model", content="hi")

    assert refused[-1]["code"] == "model_not_allowed"
    assert frames[-1]["status"] == "complete"
    body = fake_upstream.chat_requests()[0].body
    assert body["messages"][0] == {"role": "system", "content": "You tutor 12-year-olds. Be brief."}
    assert body["max_tokens"] == 200
    # Other classes are not bound by this class's list.
    other = await turn(people.other_student, model="demo/demo-tutor", content="hi")
    assert other[0]["type"] == "chat.started"


@pytest.mark.django_db(transaction=True)
async def test_a_class_with_few_tokens_a_minute_still_chats_with_shorter_replies(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The reply's length is the class's, not the student's: with a tokens-per-minute limit
    below the class's reply length, a turn is held to what the minute can hold (before, every
    turn was refused with "try again in N seconds", and every retry too)."""
    await sync_to_async(quota_policy_set)(classroom=people.classroom, period=Period.MONTH, tpm=300)

    frames = await turn(people.student, model="fakeai/fake-model", content="hi")

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    body = fake_upstream.chat_requests()[0].body
    assert body["max_tokens"] + frames[-1]["usage"]["prompt_tokens"] <= 300
    # A conversation that no longer fits in a minute says so, for good.
    long = await turn(people.student, model="fakeai/fake-model", content="word " * 400)
    assert long[-1]["type"] == "chat.error" and long[-1]["code"] == "request_too_large"
    assert "retry_after" not in long[-1]


@pytest.mark.django_db(transaction=True)
async def test_regenerate_answers_the_last_question_again(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    first = await turn(people.student, model="fakeai/fake-model", content="Tell me a joke")
    conversation = first[0]["conversation"]
    ws = await ws_connect(people.student)
    await ws.connect()
    await ws.send_json_to({"type": "chat.regenerate", "conversation": conversation, "model": "fakeai/fake-model"})
    from tests.conftest import ws_frames_until

    again = await ws_frames_until(ws, {"chat.done", "chat.error"})
    await ws.disconnect()
    assert again[-1]["status"] == "complete"
    assert fake_upstream.chat_requests()[1].body["messages"] == [{"role": "user", "content": "Tell me a joke"}]
    assert await Message.objects.filter(conversation_id=conversation, role="user").acount() == 1
    assert await Message.objects.filter(conversation_id=conversation, role="assistant").acount() == 2


@pytest.mark.django_db
def test_search_rename_and_delete(people: People, demo_model: ChatModel, client: Client) -> None:
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="photosynthesis homework",
        request_id="r1",
    )
    turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="world war history",
        request_id="r2",
    )
    client.force_login(people.student)
    page = client.get(reverse("home"), {"q": "photo"}).content.decode()
    assert "photosynthesis homework" in page and "world war history" not in page
    client.post(reverse("conversation-rename", args=[rows.conversation.pk]), {"title": "Biology"})
    assert Conversation.objects.get(pk=rows.conversation.pk).title == "Biology"
    assert client.post(reverse("conversation-rename", args=[rows.conversation.pk]), {"title": "  "}).status_code == 400
    client.post(reverse("conversation-delete", args=[rows.conversation.pk]))
    assert client.get(reverse("conversation", args=[rows.conversation.pk])).status_code == 404
    assert "Biology" not in client.get(reverse("home")).content.decode()
    assert Message.objects.filter(conversation=rows.conversation).count() == 2  # kept for the ledger and audits
    client.force_login(people.classmate)
    assert client.post(reverse("conversation-delete", args=[rows.conversation.pk])).status_code == 404


@pytest.mark.django_db
def test_titles_keep_no_control_or_direction_changing_characters_and_search_takes_a_nul(
    people: People, demo_model: ChatModel, client: Client
) -> None:
    """A NUL cannot be stored in PostgreSQL (it was a 500 there); a right-to-left override
    makes "report\u202egnp.exe" read as "reportexe.png" in the list. Titles drop both, typed
    or taken from the first question; a search for one finds nothing instead of failing."""
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="report\u202egnp.exe\u2066 please",
        request_id="r1",
    )
    assert Conversation.objects.get(pk=rows.conversation.pk).title == "reportgnp.exe please"
    client.force_login(people.student)
    url = reverse("conversation-rename", args=[rows.conversation.pk])
    assert client.post(url, {"title": "ab\x00cd\u202e\x07 x"}).status_code == 302
    assert Conversation.objects.get(pk=rows.conversation.pk).title == "abcd x"
    assert client.post(url, {"title": "\x00\u202e"}).status_code == 400
    assert Conversation.objects.get(pk=rows.conversation.pk).title == "abcd x"
    page = client.get(reverse("home"), {"q": "ab\x00cd"})
    assert page.status_code == 200 and "abcd x" in page.content.decode()


@pytest.mark.django_db
def test_teacher_reads_only_when_the_class_allows_and_each_read_is_recorded(
    people: People, demo_model: ChatModel, client: Client
) -> None:
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="my private question",
        request_id="r1",
    )
    client.force_login(people.teacher)
    url = reverse("teacher-read", args=[rows.conversation.pk])
    assert client.get(url).status_code == 404
    people.classroom.teacher_can_read = True
    people.classroom.save()
    page = client.get(url).content.decode()
    assert "my private question" in page and 'id="composer"' not in page and 'id="deleted-by-student"' not in page
    event = AuditEvent.objects.get(action="read_conversation")
    assert (event.actor, event.subject, event.classroom) == (people.teacher, people.student, people.classroom)
    client.force_login(people.other_teacher)
    assert client.get(url).status_code == 404
    client.force_login(people.student)
    notice = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Your teachers can read your conversations" in notice
    # Deleting it does not hide it from them: the student is told so before deleting.
    mine = client.get(reverse("conversation", args=[rows.conversation.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Your teachers can still read it, marked as deleted by you." in mine
    client.post(reverse("conversation-delete", args=[rows.conversation.pk]))
    client.force_login(people.teacher)
    read = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "my private question" in read
    assert (
        'id="deleted-by-student"' in read and "The student deleted this conversation on" in read
    )  # the page says so too


def test_markdown_is_rendered_and_model_html_stays_inert() -> None:
    html = reply_html(XSS)
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html and "<iframe" not in html
    assert "<img" not in html
    assert 'class="highlight"' in html and "print" in html


def test_one_reply_leaves_nothing_behind_for_the_next() -> None:
    """The renderer is reused per thread: a link reference or a fenced block defined in one
    reply must not show up in, or change, another."""
    first = reply_html("[site]: https://example.com/secret\n\n```\ncode one\n```")
    second = reply_html("see [the site][site]\n\nplain text")
    assert "code one" in first
    assert "example.com" not in second and "code one" not in second
    assert second == reply_html("see [the site][site]\n\nplain text")


@pytest.mark.django_db
def test_page_shows_rendered_replies_without_the_payload(people: People, demo_model: ChatModel, client: Client) -> None:
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=demo_model,
        content="q",
        request_id="r1",
    )
    Message.objects.filter(pk=rows.reply.pk).update(content=XSS, status="complete")
    client.force_login(people.student)
    page = client.get(reverse("conversation", args=[rows.conversation.pk])).content.decode()
    assert "<script>alert" not in page and "onerror=alert" not in page and 'href="javascript' not in page


@pytest.mark.django_db(transaction=True)
async def test_a_replys_cost_opens_into_how_it_was_billed_live_and_on_reload(
    people: People, fake_model: ChatModel, fake_upstream: Any
) -> None:
    """The footer's cost is a breakdown (the lesson on token billing): input tokens × input
    price + output tokens × output price = cost, the price's date, where the counts came
    from. The same rendering in the live frame and on the reloaded page."""
    from tests.fake_upstream import Behaviour

    fake_upstream.default = Behaviour(chunks=["Hi", "!"], usage=(1000, 500))
    ws = await ws_connect(people.student, language="en")
    assert (await ws.connect())[0]
    done = (await ws_turn(ws, model="fakeai/fake-model", content="hello"))[-1]
    await ws.disconnect()
    live = done["message_html"]
    # 1000 reported prompt tokens for a two-word question: billed at the plausible bound.
    assert "272 input tokens × 2 CNY per million = 0.000544 CNY" in live
    assert "Provider reported an implausible amount" in live
    assert "+ 500 output tokens × 8 CNY per million = 0.004 CNY" in live and "= 0.004544 CNY" in live
    assert "Price in force since 2025-01-01" in live
    assert "as the provider reported them" in live
    reply = await Message.objects.aget(pk=done["message"])
    client = Client()
    await sync_to_async(client.force_login)(people.student)
    url = reverse("conversation", args=[reply.conversation_id])
    page = (await sync_to_async(client.get)(url, HTTP_ACCEPT_LANGUAGE="en")).content.decode()
    assert "272 input tokens × 2 CNY per million = 0.000544 CNY" in page
