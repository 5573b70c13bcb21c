"""Versions of replies (regenerate) and of questions (edit): the conversation is a tree, the
page and the model see one branch of it, and the old versions stay (and stay billed)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as django_apps
from django.test import Client
from django.urls import reverse

from apps.billing.models import LedgerEntry
from apps.conversations.models import Conversation, Message
from apps.conversations.selectors import conversation_prompt_history
from apps.conversations.services import turn_begin
from tests.conftest import People, ws_connect, ws_frames_until
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "fakeai/fake-model"


async def _connected(user: Any) -> Any:
    ws = await ws_connect(user)
    accepted, _ = await ws.connect()
    assert accepted
    return ws


async def _frames(ws: Any, upstream: FakeUpstream, answer: str, **frame: Any) -> list[dict[str, Any]]:
    upstream.default = Behaviour(chunks=[answer])
    await ws.send_json_to({"model": MODEL, **frame})
    return await ws_frames_until(ws, {"chat.done", "chat.error"})


def _sent(upstream: FakeUpstream) -> list[dict[str, str]]:
    return upstream.chat_requests()[-1].body["messages"]


async def test_after_a_regenerate_the_model_is_shown_only_the_newest_reply(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "Old answer.", type="chat.send", conversation=None, content="Q1?")
    conversation = first[0]["conversation"]
    again = await _frames(ws, fake_upstream, "New answer.", type="chat.regenerate", conversation=conversation)
    assert again[-1]["type"] == "chat.done"
    assert "1/2" not in again[-1]["message_html"] and "2/2" in again[-1]["message_html"]
    assert f'href="?at={first[-1]["message"]}"' in again[-1]["message_html"]  # back to the old version

    await _frames(ws, fake_upstream, "Third.", type="chat.send", conversation=conversation, content="Q2?")

    assert _sent(fake_upstream) == [
        {"role": "user", "content": "Q1?"},
        {"role": "assistant", "content": "New answer."},
        {"role": "user", "content": "Q2?"},
    ]
    assert await Message.objects.filter(conversation_id=conversation, role="assistant").acount() == 3
    await ws.disconnect()


async def test_a_question_sent_after_an_older_version_follows_that_version(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "Old answer.", type="chat.send", conversation=None, content="Q1?")
    conversation, old_reply = first[0]["conversation"], first[-1]["message"]
    await _frames(ws, fake_upstream, "New answer.", type="chat.regenerate", conversation=conversation)

    await _frames(
        ws, fake_upstream, "Fine.", type="chat.send", conversation=conversation, content="Q2?", after=old_reply
    )

    assert _sent(fake_upstream)[1] == {"role": "assistant", "content": "Old answer."}
    await ws.disconnect()


async def test_regenerate_answers_the_question_it_names(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "A1.", type="chat.send", conversation=None, content="Q1?")
    conversation, q1 = first[0]["conversation"], first[0]["question"]
    await _frames(ws, fake_upstream, "A2.", type="chat.send", conversation=conversation, content="Q2?")

    await _frames(ws, fake_upstream, "A1 again.", type="chat.regenerate", conversation=conversation, message=q1)

    assert _sent(fake_upstream) == [{"role": "user", "content": "Q1?"}]
    reply = await Message.objects.order_by("-id").afirst()
    assert reply is not None and reply.parent_id == q1
    await ws.disconnect()


async def test_editing_a_question_makes_a_new_branch_and_keeps_the_old_one(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, client: Client
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "A1.", type="chat.send", conversation=None, content="Q1?")
    conversation = first[0]["conversation"]
    second = await _frames(ws, fake_upstream, "A2.", type="chat.send", conversation=conversation, content="Q2?")
    old_question = second[0]["question"]

    edited = await _frames(
        ws,
        fake_upstream,
        "A2 edited.",
        type="chat.edit",
        conversation=conversation,
        message=old_question,
        content="Q2, better?",
    )

    assert edited[0]["type"] == "chat.started" and edited[0]["question"] != old_question
    assert edited[-1]["type"] == "chat.done"
    assert "2/2" in edited[-1]["question_html"] and f'href="?at={old_question}"' in edited[-1]["question_html"]
    assert _sent(fake_upstream) == [
        {"role": "user", "content": "Q1?"},
        {"role": "assistant", "content": "A1."},
        {"role": "user", "content": "Q2, better?"},
    ]
    # The old question and its reply stay, and stay billed.
    assert await Message.objects.filter(conversation_id=conversation).acount() == 6
    assert await LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE).acount() == 3
    # The next question follows the edited branch.
    await _frames(ws, fake_upstream, "A3.", type="chat.send", conversation=conversation, content="Q3?")
    assert [m["content"] for m in _sent(fake_upstream)] == ["Q1?", "A1.", "Q2, better?", "A2 edited.", "Q3?"]
    await ws.disconnect()


@pytest.mark.parametrize("whose", ["a reply", "another students question", "a missing message"])
async def test_only_a_question_of_the_students_own_conversation_can_be_edited(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, whose: str
) -> None:
    ws = await _connected(people.student)
    mine = await _frames(ws, fake_upstream, "A1.", type="chat.send", conversation=None, content="Q1?")
    other_ws = await _connected(people.classmate)
    theirs = await _frames(other_ws, fake_upstream, "B1.", type="chat.send", conversation=None, content="B?")
    await other_ws.disconnect()
    conversation = mine[0]["conversation"]
    message = {
        "a reply": mine[-1]["message"],
        "another students question": theirs[0]["question"],
        "a missing message": 999_999,
    }[whose]
    requests_before = len(fake_upstream.chat_requests())

    await ws.send_json_to(
        {"type": "chat.edit", "conversation": conversation, "message": message, "model": MODEL, "content": "x"}
    )
    frames = await ws_frames_until(ws, {"chat.error", "chat.done"})

    assert frames == [{"type": "chat.error", "code": "not_found", "message": frames[0]["message"]}]
    assert len(fake_upstream.chat_requests()) == requests_before
    assert await Message.objects.filter(conversation_id=conversation).acount() == 2
    await ws.disconnect()


async def test_an_edit_must_name_its_question(people: People, fake_model: Any, fake_upstream: FakeUpstream) -> None:
    ws = await _connected(people.student)
    mine = await _frames(ws, fake_upstream, "A1.", type="chat.send", conversation=None, content="Q1?")
    await ws.send_json_to(
        {"type": "chat.edit", "conversation": mine[0]["conversation"], "model": MODEL, "content": "x"}
    )
    frames = await ws_frames_until(ws, {"chat.error"})
    assert frames[-1]["code"] == "bad_request"
    await ws.disconnect()


async def test_the_page_shows_one_version_at_a_time_and_links_to_the_others(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, client: Client
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "Old answer.", type="chat.send", conversation=None, content="Q1?")
    conversation, old_reply = first[0]["conversation"], first[-1]["message"]
    again = await _frames(ws, fake_upstream, "New answer.", type="chat.regenerate", conversation=conversation)
    await ws.disconnect()
    await sync_to_async(client.force_login)(people.student)

    page = (await _get(client, f"/c/{conversation}/")).content.decode()
    assert "New answer." in page and "Old answer." not in page
    assert "2/2" in page and f'href="?at={old_reply}"' in page

    older = (await _get(client, f"/c/{conversation}/?at={old_reply}")).content.decode()
    assert "Old answer." in older and "New answer." not in older
    assert "1/2" in older and f'href="?at={again[-1]["message"]}"' in older


async def test_the_version_chosen_is_where_the_conversation_opens_until_the_next_turn(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, client: Client
) -> None:
    ws = await _connected(people.student)
    first = await _frames(ws, fake_upstream, "Old answer.", type="chat.send", conversation=None, content="Q1?")
    conversation, old_reply = first[0]["conversation"], first[-1]["message"]
    await _frames(ws, fake_upstream, "New answer.", type="chat.regenerate", conversation=conversation)
    await sync_to_async(client.force_login)(people.student)

    # Looking at a version (a GET, which any link can make) changes nothing...
    await _get(client, f"/c/{conversation}/?at={old_reply}")
    assert (await Conversation.objects.aget(pk=conversation)).shown_message_id is None
    # ...the switcher's POST remembers it.
    assert (await _post(client, f"/c/{conversation}/shown/", {"message": old_reply})).status_code == 204
    page = (await _get(client, f"/c/{conversation}/")).content.decode()
    assert "Old answer." in page and "New answer." not in page and "1/2" in page

    # A turn (here a third version) is what the page opens on next.
    await _frames(ws, fake_upstream, "Newest answer.", type="chat.regenerate", conversation=conversation)
    await ws.disconnect()
    page = (await _get(client, f"/c/{conversation}/")).content.decode()
    assert "Newest answer." in page and "3/3" in page


async def test_a_search_hit_in_an_older_version_opens_on_that_version(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, client: Client
) -> None:
    ws = await _connected(people.student)
    first = await _frames(
        ws, fake_upstream, "Old answer about owls.", type="chat.send", conversation=None, content="Q?"
    )
    conversation, old_reply = first[0]["conversation"], first[-1]["message"]
    await _frames(ws, fake_upstream, "New answer.", type="chat.regenerate", conversation=conversation)
    await ws.disconnect()
    await sync_to_async(client.force_login)(people.student)

    listing = (await _get(client, "/?q=owls")).content.decode()
    assert f'href="/c/{conversation}/?at={old_reply}"' in listing
    page = (await _get(client, f"/c/{conversation}/?at={old_reply}")).content.decode()
    assert "Old answer about owls." in page and "1/2" in page


async def test_a_version_from_elsewhere_is_not_remembered(
    people: People, fake_model: Any, fake_upstream: FakeUpstream, client: Client
) -> None:
    """?at= with a message of another conversation (another student's, or the same student's
    other one) shows and remembers nothing of it."""
    mine = await _connected(people.student)
    first = await _frames(mine, fake_upstream, "Mine.", type="chat.send", conversation=None, content="Q?")
    other = await _frames(mine, fake_upstream, "My other.", type="chat.send", conversation=None, content="Q2?")
    await mine.disconnect()
    theirs = await _connected(people.classmate)
    their = await _frames(theirs, fake_upstream, "Theirs.", type="chat.send", conversation=None, content="Q3?")
    await theirs.disconnect()
    await sync_to_async(client.force_login)(people.student)

    for foreign in (other[-1]["message"], their[-1]["message"]):
        page = (await _get(client, f"/c/{first[0]['conversation']}/?at={foreign}")).content.decode()
        assert "Mine." in page and "My other." not in page and "Theirs." not in page
        shown = await _post(client, f"/c/{first[0]['conversation']}/shown/", {"message": foreign})
        assert shown.status_code == 400
    for bad in ("", "x", "-1", "9" * 20):
        assert (await _post(client, f"/c/{first[0]['conversation']}/shown/", {"message": bad})).status_code == 400
    saved = await Conversation.objects.aget(pk=first[0]["conversation"])
    assert saved.shown_message_id is None
    # Nor may anyone choose for another's conversation.
    await sync_to_async(client.force_login)(people.classmate)
    shown = await _post(client, f"/c/{first[0]['conversation']}/shown/", {"message": first[-1]["message"]})
    assert shown.status_code == 404


async def _post(client: Client, url: str, data: dict[str, Any]) -> Any:
    return await sync_to_async(client.post)(url, data)


async def _get(client: Client, url: str) -> Any:
    return await sync_to_async(client.get)(url)


def test_the_migration_links_existing_messages_as_they_were_shown(people: People, fake_model: Any) -> None:
    """Before versions a conversation was a list: each reply follows the question before it
    (a regenerated one too), each question the reply before it."""
    conversation = Conversation.objects.create(owner=people.student, classroom=people.classroom, title="old")
    rows = [
        ("user", "Q1"),
        ("assistant", "A1 first"),
        ("assistant", "A1 regenerated"),
        ("user", "Q2"),
        ("assistant", "A2"),
    ]
    made = [
        Message.objects.create(conversation=conversation, role=role, content=content, status="complete")
        for role, content in rows
    ]
    migration = importlib.import_module("apps.conversations.migrations.0006_message_parent")

    migration.parents_fill(django_apps, None)

    parents = [Message.objects.get(pk=message.pk).parent_id for message in made]
    assert parents == [None, made[0].pk, made[0].pk, made[2].pk, made[3].pk]
    assert [m["content"] for m in conversation_prompt_history(conversation=conversation)] == [
        "Q1",
        "A1 regenerated",
        "Q2",
        "A2",
    ]


def test_a_teacher_reads_one_version_at_a_time_too(people: People, fake_model: Any, client: Client) -> None:
    first = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=fake_model,
        content="Q?",
        request_id="a",
    )
    Message.objects.filter(pk=first.reply.pk).update(content="Old answer.", status="complete")
    again = turn_begin(
        user=people.student,
        conversation=first.conversation,
        classroom=people.classroom,
        model=fake_model,
        content="",
        request_id="b",
        ask_again=True,
    )
    Message.objects.filter(pk=again.reply.pk).update(content="New answer.", status="complete")
    people.classroom.teacher_can_read = True
    people.classroom.save()
    client.force_login(people.teacher)
    url = reverse("teacher-read", args=[first.conversation.pk])

    page = client.get(url).content.decode()
    older = client.get(f"{url}?at={first.reply.pk}").content.decode()

    assert "New answer." in page and "Old answer." not in page and "2/2" in page
    assert "Old answer." in older and "New answer." not in older and "1/2" in older
