"""Billing through the chat socket: every turn is held, settled and shown; refusals carry
when to try again; stopped replies are billed for what was produced, once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.billing.models import Hold, LedgerEntry, UsageCounter
from apps.conversations.models import Message
from apps.conversations.tasks import expire_holds
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set
from tests.conftest import People, ws_connect, ws_frames_until, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


async def connected(user: Any):  # type: ignore[no-untyped-def]
    ws = await ws_connect(user)
    await ws.connect()
    return ws


async def test_each_turn_writes_one_ledger_row_and_shows_its_cost(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(policy_set)(people.classroom, student_token_limit=100_000)
    fake_upstream.default = Behaviour(chunks=["Hi", "!"], usage=(1000, 500))
    ws = await connected(people.student)

    # A question long enough for the provider's 1000 prompt tokens to be plausible.
    frames = await ws_turn(ws, model="fakeai/fake-model", content="Hello " * 600)

    done = frames[-1]
    assert (done["cost"], done["currency"]) == ("0.006", "CNY")
    assert done["quota"]["tokens_used"] == 1500 and done["quota"]["token_limit"] == 100_000
    entry = await LedgerEntry.objects.aget()
    reply = await Message.objects.aget(pk=done["message"])
    assert entry.request_id == reply.request_id
    assert (entry.prompt_tokens, entry.completion_tokens, entry.usage_source) == (1000, 500, "provider")
    assert reply.cost == entry.cost_billing
    assert (await Hold.objects.aget()).status == "settled"
    await ws.disconnect()


async def test_quota_exceeded_is_a_chat_error_with_the_reset_time(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.CHAT_DEFAULT_MAX_TOKENS = 100
    await sync_to_async(policy_set)(people.classroom, period="week", student_token_limit=50)
    ws = await connected(people.student)

    frames = await ws_turn(ws, model="fakeai/fake-model", content="Hello")

    error = frames[-1]
    assert error["type"] == "chat.error" and error["code"] == "quota_exceeded"
    assert error["reset_at"] and "resets" in error["message"]
    # Why, in the student's terms: the hold is the question plus the longest reply allowed.
    assert error["message"].startswith("A reply can be up to 100 tokens and this question is about ")
    assert "you have 50 tokens left this period" in error["message"] and "/usage/" in error["message"]
    assert fake_upstream.chat_requests() == []
    assert await Message.objects.acount() == 0 and await LedgerEntry.objects.acount() == 0
    await ws.disconnect()


async def test_rate_limited_is_a_chat_error_with_retry_after(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(policy_set)(people.classroom, rpm=1)
    ws = await connected(people.student)
    with time_machine.travel(timezone.now().replace(second=10), tick=True):
        assert (await ws_turn(ws, model="fakeai/fake-model", content="one"))[-1]["type"] == "chat.done"
        error = (await ws_turn(ws, model="fakeai/fake-model", content="two"))[-1]
    assert error["code"] == "rate_limited" and 1 <= error["retry_after"] <= 60
    await ws.disconnect()


async def test_stopped_reply_is_billed_for_what_was_produced_once(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(policy_set)(people.classroom, student_token_limit=100_000)
    fake_upstream.default = Behaviour(chunks=["alpha ", "beta ", "gamma ", "delta"], delay=0.3)
    ws = await connected(people.student)
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "go"})
    await ws_frames_until(ws, {"chat.delta"})
    await ws.send_json_to({"type": "chat.stop"})
    done = (await ws_frames_until(ws, {"chat.done"}))[-1]

    entry = await LedgerEntry.objects.aget()
    assert (entry.status, entry.usage_source) == ("stopped", "counted")
    assert entry.completion_tokens == done["usage"]["completion_tokens"] > 0
    assert entry.prompt_tokens > 0  # the prompt was sent: never refunded in full
    counter = await UsageCounter.objects.aget()
    assert counter.tokens_held == 0 and counter.tokens_used == entry.total_tokens
    await ws.disconnect()


async def test_a_worker_that_died_mid_reply_is_settled_by_the_periodic_task(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Simulated by a reply and hold left open (as a killed process leaves them)."""
    from apps.conversations.pipeline import ChatRequest, turn_prepare

    await sync_to_async(policy_set)(people.classroom, student_token_limit=100_000)
    with time_machine.travel(timezone.now() - timedelta(hours=1)):
        turn = await sync_to_async(turn_prepare)(
            identify=lambda: people.student,
            request=ChatRequest(conversation_id=None, model="fakeai/fake-model", content="lost"),
        )

    assert await sync_to_async(expire_holds)() == 1
    reply = await Message.objects.aget(pk=turn.reply_id)
    assert (reply.status, reply.error_code) == ("interrupted", "worker_lost")
    entry = await LedgerEntry.objects.aget(request_id=turn.request_id)
    assert entry.status == "interrupted" and entry.prompt_tokens > 0 and entry.completion_tokens == 0
    assert await sync_to_async(expire_holds)() == 0


def _hello(entry_point: str) -> Any:
    """ "Hello" as the chat page asks it, or as an API request does."""
    from apps.conversations.pipeline import ChatRequest

    if entry_point == "chat":
        return ChatRequest(conversation_id=None, model="fakeai/fake-model", content="Hello")
    return ChatRequest(
        conversation_id=None,
        model="fakeai/fake-model",
        messages=[{"role": "user", "content": "Hello"}],
        entry_point="api",
    )


@pytest.mark.parametrize("entry_point", ["chat", "api"])
async def test_a_caller_gone_while_the_turn_is_prepared_leaves_no_hold_and_pays_nothing(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, entry_point: str
) -> None:
    """The socket closed or the HTTP client left while the turn was being prepared on its
    database thread, which cannot be stopped: the turn is prepared, then closed at once as
    stopped. The hold is settled (not left to block the quota until it expires) and nothing
    is billed, since the provider was never asked."""
    import asyncio

    from apps.conversations.pipeline import completion_run

    request = _hello(entry_point)
    events = completion_run(identify=lambda: people.student, request=request)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0)  # it now waits on the database thread
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    assert [hold.status async for hold in Hold.objects.all()] == ["settled"]
    entry = await LedgerEntry.objects.aget()
    assert (entry.status, entry.prompt_tokens, entry.completion_tokens, entry.cost_billing) == ("stopped", 0, 0, 0)
    assert not fake_upstream.chat_requests()
    if entry_point == "chat":
        reply = await Message.objects.aget(role=Message.Role.ASSISTANT)
        assert (reply.status, reply.content) == (Message.Status.STOPPED, "")


@pytest.mark.parametrize("entry_point", ["chat", "api"])
async def test_a_caller_gone_while_the_finished_turn_waits_for_a_thread_is_still_billed_once(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, entry_point: str
) -> None:
    """The reply has arrived and its settling waits for a free database thread (a busy
    server) when the caller goes away (a client hanging up right after the last chunk): the
    settling still runs, once. Left cancelled in the queue, the hold stayed active, blocking
    the quota, and the reply went unbilled."""
    import asyncio
    import threading

    from apps.conversations.pipeline import Delta, completion_run

    request = _hello(entry_point)
    events = completion_run(identify=lambda: people.student, request=request)
    texts = []
    while "".join(texts) != "Hello, class!":
        event = await anext(events)
        if isinstance(event, Delta):
            texts.append(event.text)
    # Every thread of the loop's pool busy: the settling step will wait in its queue.
    loop, release = asyncio.get_running_loop(), threading.Event()
    busy = [loop.run_in_executor(None, release.wait) for _ in range(64)]
    last = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.3)  # the stream has ended; settling waits for a thread
    last.cancel()
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await last
    await asyncio.gather(*busy)

    assert [hold.status async for hold in Hold.objects.all()] == ["settled"]
    entry = await LedgerEntry.objects.aget()
    assert entry.status == "complete" and entry.completion_tokens > 0
    if entry_point == "chat":
        reply = await Message.objects.aget(role=Message.Role.ASSISTANT)
        assert (reply.status, reply.content) == (Message.Status.COMPLETE, "Hello, class!")
