"""Side by side: one question to several models over the chat websocket (compare.send), each
lane its own reply, hold and ledger row. Real ASGI app and SDK, fake upstream over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.accounts.models import Classroom
from apps.billing.models import Hold, LedgerEntry
from apps.conversations.models import Conversation, Message
from apps.providers.models import ChatModel, ClassModelAccess, ModelPrice
from apps.providers.selectors import price_cache_forget
from tests.billing.conftest import policy_set
from tests.conftest import People, ws_connect, ws_frames_until
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
MODELS = ["fakeai/fake-model", "fakeai/fake-model-2"]


@pytest.fixture
def second_model(fake_model: ChatModel) -> ChatModel:
    model = ChatModel.objects.create(
        provider=fake_model.provider, name="fake-model-2", display_name="Fake 2", max_output_tokens=100
    )
    ModelPrice.objects.create(
        model=model,
        input_per_million=Decimal("5"),
        output_per_million=Decimal("10"),
        currency="CNY",
        effective_from=timezone.now() - timezone.timedelta(days=1),
    )
    price_cache_forget()
    return model


async def connected(user: Any):  # type: ignore[no-untyped-def]
    communicator = await ws_connect(user)
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def comparing(people: People) -> Any:
    """A comparison of MODELS under way: its first piece has arrived."""
    ws = await connected(people.student)
    await ws.send_json_to({"type": "compare.send", "conversation": None, "models": MODELS, "content": "Long?"})
    await ws_frames_until(ws, {"chat.delta"})
    return ws


async def compare(ws: Any, **send: Any) -> list[dict[str, Any]]:
    await ws.send_json_to({"type": "compare.send", "conversation": None, "models": MODELS, **send})
    return await ws_frames_until(ws, {"compare.done", "chat.error"}, timeout=20)


async def test_each_lane_streams_its_own_reply_and_is_billed_once(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["Tokens ", "are ", "pieces."], usage=(12, 3))
    ws = await connected(people.student)
    frames = await compare(ws, content="What is a token?")
    assert frames[-1] == {"type": "compare.done"}
    for lane in (0, 1):
        mine = [f for f in frames if f.get("lane") == lane]
        assert [f["type"] for f in mine] == ["chat.started", "chat.delta", "chat.delta", "chat.delta", "chat.done"]
        assert "".join(f["text"] for f in mine if f["type"] == "chat.delta") == "Tokens are pieces."
        done = mine[-1]
        assert done["model"] == MODELS[lane] and done["status"] == "complete" and done["first_chunk_ms"] is not None
        assert done["usage"] == {"prompt_tokens": 12, "completion_tokens": 3}
    # Two conversations (the student may go on with either), two replies, two ledger rows.
    conversations = [f["conversation"] for f in frames if f["type"] == "chat.started"]
    assert len(set(conversations)) == 2
    assert await Conversation.objects.filter(owner=people.student).acount() == 2
    entries = [e async for e in LedgerEntry.objects.order_by("route_name")]
    assert [e.route_name for e in entries] == MODELS and all(e.entry_point == "chat" for e in entries)
    # Each lane at its own model's price.
    assert entries[1].price_input_per_million == Decimal("5") != entries[0].price_input_per_million
    assert sorted(r.body["model"] for r in fake_upstream.chat_requests()) == ["fake-model", "fake-model-2"]
    await ws.disconnect()


async def test_the_whole_comparison_is_refused_when_the_quota_cannot_hold_every_lane(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    # Room for one reply of at most 100 tokens plus its question, not for two.
    await sync_to_async(policy_set)(people.classroom, student_token_limit=150)
    await Classroom.objects.filter(pk=people.classroom.pk).aupdate(max_reply_tokens=100)
    ws = await connected(people.student)
    frames = await compare(ws, content="hi")
    assert [f["type"] for f in frames] == ["chat.error"] and frames[0]["code"] == "quota_exceeded"
    # Not the single reply's message, which counted the first lane's hold (taken in the same
    # rolled-back transaction) as a reply "still being written".
    assert "Together these 2 replies" in frames[0]["message"] and "being written" not in frames[0]["message"]
    assert frames[0]["reset_at"]
    assert not await Message.objects.aexists() and not await Hold.objects.aexists()
    assert not fake_upstream.chat_requests()
    await ws.disconnect()


async def test_a_model_the_class_does_not_allow_refuses_the_whole_comparison(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    access = await ClassModelAccess.objects.acreate(classroom=people.classroom)
    await access.allowed_models.aset([fake_model])
    ws = await connected(people.student)
    frames = await compare(ws, content="hi")
    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "model_not_allowed"
    assert not await Conversation.objects.aexists() and not fake_upstream.chat_requests()
    await ws.disconnect()


async def test_teachers_can_switch_comparing_off(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await ClassModelAccess.objects.acreate(classroom=people.classroom, compare_enabled=False)
    ws = await connected(people.student)
    frames = await compare(ws, content="hi")
    assert frames[-1]["code"] == "compare_off"
    assert not await Conversation.objects.aexists() and not fake_upstream.chat_requests()
    await ws.disconnect()


@pytest.mark.parametrize(
    "models", [["fakeai/fake-model"], MODELS * 3, ["fakeai/fake-model", "fakeai/fake-model"], "fakeai/fake-model"]
)
async def test_a_comparison_needs_two_to_four_different_models(
    people: People, fake_model: ChatModel, models: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await connected(people.student)
    await ws.send_json_to({"type": "compare.send", "conversation": None, "models": models, "content": "hi"})
    frames = await ws_frames_until(ws, {"chat.error"})
    assert frames[-1]["code"] == "bad_request"
    assert not await Conversation.objects.aexists()
    await ws.disconnect()


async def test_stop_ends_every_lane_and_each_keeps_what_arrived(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three ", "four"], delay=0.3)
    ws = await comparing(people)
    await ws.send_json_to({"type": "chat.stop"})
    frames = await ws_frames_until(ws, {"compare.done"}, timeout=20)
    done = [f for f in frames if f["type"] == "chat.done"]
    assert {f["lane"] for f in done} <= {0, 1}
    replies = [m async for m in Message.objects.filter(role=Message.Role.ASSISTANT)]
    assert len(replies) == 2 and all(m.status == Message.Status.STOPPED for m in replies)
    assert await LedgerEntry.objects.acount() == 2
    await ws.disconnect()


async def test_a_stop_for_one_lane_ends_that_lane_alone(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """A student ends a slow or rambling model and keeps the other (Stop stopped them all)."""
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three ", "four"], delay=0.3)
    ws = await comparing(people)
    await ws.send_json_to({"type": "chat.stop", "lane": 1})
    frames = await ws_frames_until(ws, {"compare.done"}, timeout=20)
    done = {f["lane"]: f["status"] for f in frames if f["type"] == "chat.done"}
    assert done == {0: "complete", 1: "stopped"}
    assert await LedgerEntry.objects.acount() == 2
    await ws.disconnect()


@pytest.mark.parametrize("lane", [2, -1, "0", True, 0.5])
async def test_a_stop_for_a_lane_that_is_not_there_is_a_bad_request(
    people: People, fake_model: ChatModel, second_model: ChatModel, fake_upstream: FakeUpstream, lane: Any
) -> None:
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three "], delay=0.2)
    ws = await comparing(people)
    await ws.send_json_to({"type": "chat.stop", "lane": lane})
    frames = await ws_frames_until(ws, {"compare.done"}, timeout=20)
    assert [f["code"] for f in frames if f["type"] == "chat.error" and "lane" not in f] == ["bad_request"]
    assert {f["lane"]: f["status"] for f in frames if f["type"] == "chat.done"} == {0: "complete", 1: "complete"}
    await ws.disconnect()
