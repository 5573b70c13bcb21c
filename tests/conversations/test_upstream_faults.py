"""A provider that breaks the protocol or sends too much: the reply ends labelled
(`upstream_dropped`, `upstream_too_large`), what arrived is saved and billed, and the socket
gets exactly one closing frame. Never `internal_error`, never a crash in the log."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from django.utils import translation

# Loading the ASGI app sets Django's logging up again, which drops pytest's log capture:
# load it now, before any test captures logs.
import webchat.asgi  # noqa: E402,F401,I001
from apps.billing.models import Hold, LedgerEntry
from apps.conversations.models import Message
from apps.providers.client import REPLY_OVERSHOOT_TOKENS, reply_bytes_cap
from apps.providers.models import ChatModel
from apps.providers.tokens import count_text_tokens
from tests.conftest import People, ws_connect, ws_frames_until, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "fakeai/fake-model"


def chunk(content: Any = None, finish: Any = None, **extra: Any) -> str:
    """One chat.completion.chunk as a provider would send it (any values, valid or not)."""
    delta = {} if content is None else {"content": content}
    payload = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return json.dumps(payload)


async def turn(user: Any, **extra: Any) -> list[dict[str, Any]]:
    """One turn, and proof that nothing follows its closing frame."""
    ws = await ws_connect(user)
    await ws.connect()
    try:
        frames = await ws_turn(ws, model=MODEL, content="hello", **extra)
        assert await ws.receive_nothing(timeout=0.3), "a second frame after the turn's end"
        return frames
    finally:
        await ws.disconnect()


# Each breaks the protocol before any text arrived.
BROKEN_FROM_THE_START = {
    "a data line that is not JSON": ["this is not json"],
    "half a JSON object": ['{"id": "c", "choices": [{"delta": {"content": "Hi"'],
    "JSON that is a number": ["42"],
    "JSON that is a list": ['[{"choices": []}]'],
    "JSON that is a string": ['"hello"'],
    "choices that is a string": ['{"id": "c", "choices": "Hello"}'],
    "choices that is an object": ['{"id": "c", "choices": {"0": {"delta": {"content": "Hi"}}}}'],
    "a choice that is a number": ['{"id": "c", "choices": [5]}'],
    "delta content that is a number": [chunk(5)],
    "delta content that is a list": [chunk(["Hi"])],
    "delta content that is an object": [chunk({"text": "Hi"})],
    "a finish reason that is a number": [chunk("", finish=1)],
}


@pytest.mark.parametrize("events", BROKEN_FROM_THE_START.values(), ids=BROKEN_FROM_THE_START.keys())
async def test_a_malformed_stream_fails_as_upstream_dropped_with_one_closing_frame(
    people: People,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    events: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_upstream.default = Behaviour(raw_events=events)
    with caplog.at_level(logging.INFO):
        frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_dropped"
    assert "not a valid reply" in frames[-1]["message"]
    assert [f["type"] for f in frames].count("chat.error") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no "chat turn failed"
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.error_code, reply.content) == ("failed", "upstream_dropped", "")
    assert (await Hold.objects.aget()).status == "settled"


async def test_text_before_a_malformed_line_is_kept_and_billed(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake_upstream.default = Behaviour(
        raw_events=[chunk("Hello, "), chunk("class"), "data that is not JSON", chunk("never seen", finish="stop")]
    )
    with caplog.at_level(logging.INFO):
        frames = await turn(people.student)

    done = frames[-1]
    assert (done["type"], done["status"], done["error_code"]) == ("chat.done", "interrupted", "upstream_dropped")
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == "Hello, class"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    reply = await Message.objects.aget(pk=done["message"])
    assert (reply.status, reply.content, reply.usage_source) == ("interrupted", "Hello, class", "counted")
    entry = await LedgerEntry.objects.aget()
    assert entry.completion_tokens == count_text_tokens(text="Hello, class", model_name="fake-model").tokens > 0


async def test_a_stream_of_only_done_is_a_drop_not_a_reply(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(raw_events=["[DONE]"])
    frames = await turn(people.student)
    assert frames[-1]["code"] == "upstream_dropped"


async def test_a_usage_chunk_without_choices_is_accepted(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    usage = json.dumps(
        {"id": "c", "object": "chat.completion.chunk", "usage": {"prompt_tokens": 9, "completion_tokens": 2}}
    )
    fake_upstream.default = Behaviour(raw_events=[chunk("Hi!"), chunk(finish="stop"), usage, "[DONE]"])
    frames = await turn(people.student)
    assert frames[-1]["status"] == "complete"
    assert frames[-1]["usage"] == {"prompt_tokens": 9, "completion_tokens": 2}


async def test_a_reply_past_the_cap_is_cut_saved_interrupted_and_billed_for_what_arrived(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_MAX_REPLY_BYTES = 1000
    fake_upstream.default = Behaviour(chunks=["é" * 150] * 10)  # 3000 bytes of text, 2 bytes a character

    frames = await turn(people.student)

    done = frames[-1]
    assert (done["type"], done["status"], done["error_code"]) == ("chat.done", "interrupted", "upstream_too_large")
    assert "was longer than its length allows" in done["error"]
    relayed = "".join(f["text"] for f in frames if f["type"] == "chat.delta")
    assert relayed == "é" * 500 and len(relayed.encode()) == 1000  # cut at the cap, never inside a character
    reply = await Message.objects.aget(pk=done["message"])
    assert (reply.status, reply.error_code, reply.content) == ("interrupted", "upstream_too_large", relayed)
    entry = await LedgerEntry.objects.aget()
    # The provider's usage chunk comes at the end, which was never read: billed on our count.
    assert entry.usage_source == "counted"
    assert entry.completion_tokens == count_text_tokens(text=relayed, model_name="fake-model").tokens


async def test_a_20_mb_reply_is_not_relayed_or_stored_whole(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["x" * 100_000] * 200)

    frames = await turn(people.student)

    assert frames[-1]["error_code"] == "upstream_too_large"
    reply = await Message.objects.aget(pk=frames[-1]["message"])
    # Cut where no reply of the max_tokens asked for could reach (far below the 1 MB cap): at
    # its bytes, and at its tokens (max_tokens + 256), whichever comes first.
    asked = fake_upstream.chat_requests()[0].body["max_tokens"]
    assert 0 < len(reply.content) <= reply_bytes_cap(asked) < 1_000_000
    assert count_text_tokens(text=reply.content, model_name="fake-model").tokens <= asked + REPLY_OVERSHOOT_TOKENS


async def test_a_provider_that_ignores_max_tokens_is_cut_and_billed_for_what_arrived_not_its_claim(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """A student's own server (or a broken provider) sends 900,000 characters for a reply
    asked to be at most 100 tokens, and claims 180,000 tokens: the relay stops at the tokens
    the hold allows (max_tokens + 256), and the bill is our count of what was delivered."""
    fake_upstream.default = Behaviour(chunks=["lorem ipsum dolor sit amet " * 4] * 8_300, usage=(10, 180_000))

    frames = await turn(people.student, max_tokens=100)

    done = frames[-1]
    assert done["error_code"] == "upstream_too_large" and done["status"] == "interrupted"
    relayed = "".join(f["text"] for f in frames if f["type"] == "chat.delta")
    counted = count_text_tokens(text=relayed, model_name="fake-model").tokens
    assert 300 < counted <= 100 + 256 and len(relayed.encode()) <= reply_bytes_cap(100)
    entry = await LedgerEntry.objects.aget()
    assert entry.completion_tokens == counted


async def test_one_enormous_line_is_refused_before_it_is_read_whole(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    # A single SSE line far past the cap (the SDK would hold a line in memory until its end).
    settings.LLM_MAX_REPLY_BYTES = 1000
    fake_upstream.default = Behaviour(chunks=["y" * 2_000_000])

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_too_large"
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.content) == ("failed", "")


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
async def test_a_huge_error_body_is_refused_compressed_or_not(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, settings: Any, compressed: bool
) -> None:
    # 20 MB of error message; gzip makes it some 20 KB on the wire (a "zip bomb"): the cap
    # counts what it unpacks to.
    settings.LLM_MAX_REPLY_BYTES = 1000
    fake_upstream.default = Behaviour(status=400, error_padding=20_000_000, gzip=compressed)

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_too_large"


async def test_a_compressed_error_body_within_the_cap_is_read(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(status=400, gzip=True)
    frames = await turn(people.student)
    assert frames[-1]["code"] == "upstream_rejected"


async def test_a_nul_in_the_text_is_not_stored(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    # PostgreSQL text cannot hold one: the reply would fail to save.
    fake_upstream.default = Behaviour(chunks=["Hel\x00lo"])
    frames = await turn(people.student)
    reply = await Message.objects.aget(pk=frames[-1]["message"])
    assert (reply.status, reply.content) == ("complete", "Hello")


def thinking(text: str) -> str:
    """A reasoning model's chunk of thinking (DeepSeek's, Qwen's, Kimi's field)."""
    return chunk(None, None).replace('"delta": {}', json.dumps({"delta": {"reasoning_content": text}})[1:-1])


THOUGHT = "Let me think about what the student asked, step by step. "


async def test_thinking_that_arrived_is_billed_when_the_reply_is_stopped_during_it(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """A reasoning model thinks before it answers, and the provider bills the thinking:
    stopped while it thinks, the reply is billed for the thinking that arrived (it was the
    prompt alone, so a stop at the right moment got the thinking free)."""
    fake_upstream.default = Behaviour(
        raw_events=[thinking(THOUGHT)] * 40 + [chunk("Answer."), chunk(finish="stop")], delay=0.05
    )
    ws = await ws_connect(people.student)
    await ws.connect()
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": MODEL, "content": "Why?"})
    frames = await ws_frames_until(ws, {"chat.started"})
    await asyncio.sleep(0.8)  # some thinking has arrived; no text yet
    await ws.send_json_to({"type": "chat.stop"})
    frames += await ws_frames_until(ws, {"chat.done", "chat.error"})
    await ws.disconnect()

    assert not [f for f in frames if f["type"] == "chat.delta"]
    entry = await LedgerEntry.objects.aget()
    one = count_text_tokens(text=THOUGHT, model_name="fake-model").tokens
    assert entry.status == "stopped" and entry.usage_source == "counted"
    assert one * 3 <= entry.completion_tokens <= one * 40


async def test_a_fault_after_thinking_bills_it_and_fails_over_to_no_other_route(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The provider dropped the stream while the model was still thinking: the thinking was
    billed by the provider, so it is billed here too (it was a failed reply, billed nothing,
    and the SDK retried it twice more for free)."""
    fake_upstream.default = Behaviour(raw_events=[thinking(THOUGHT)] * 5 + ['{"trunc'])

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "interrupted"
    entry = await LedgerEntry.objects.aget()
    assert entry.completion_tokens == count_text_tokens(text=THOUGHT * 5, model_name="fake-model").tokens
    assert len(fake_upstream.chat_requests()) == 1


async def test_thinking_past_max_tokens_is_cut_where_the_hold_ends(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Thinking is billed as output, so max_tokens bounds it with the answer (as OpenAI's
    does). A provider whose max_tokens leaves the thinking out sent 20 KB of it for a
    10-token hold: 30 such requests ran a 3,000-token quota to 42,630. Now the reply is cut
    where the hold ends, and billed no more than the hold's bound."""
    fake_upstream.default = Behaviour(
        raw_events=[thinking(THOUGHT * 10)] * 40 + [chunk("Because."), chunk(finish="stop")]
    )

    frames = await turn(people.student, max_tokens=10)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "interrupted"
    assert frames[-1]["error_code"] == "upstream_too_large"
    assert not [f for f in frames if f["type"] == "chat.delta"]
    entry = await LedgerEntry.objects.aget()
    assert 0 < entry.completion_tokens <= 10 + REPLY_OVERSHOOT_TOKENS


async def test_a_reasoning_models_chat_reply_is_held_room_for_all_it_may_write(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The chat asks no length. A reasoning model thinks for thousands of tokens before it
    answers: held the site's default (1,024), its thinking would be cut before the answer.
    It is held, and asked for, the model's max output tokens."""
    fake_model.thinks = True
    await fake_model.asave(update_fields=["thinks"])
    fake_upstream.default = Behaviour(
        raw_events=[thinking(THOUGHT * 10)] * 15 + [chunk("Because."), chunk(finish="stop")]
    )

    frames = await turn(people.student)

    assert frames[-1]["status"] == "complete"
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == "Because."
    [request] = fake_upstream.chat_requests()
    assert request.body["max_tokens"] == fake_model.max_output_tokens == 2048
    hold = await Hold.objects.aget()
    assert hold.tokens - hold.prompt_tokens == 2048
    entry = await LedgerEntry.objects.aget()
    expected = count_text_tokens(text=THOUGHT * 10 * 15 + "Because.", model_name="fake-model").tokens
    assert entry.completion_tokens >= expected > 1024


async def test_dense_text_past_max_tokens_is_cut_by_its_tokens_not_only_its_bytes(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Rare CJK characters take a token a byte or more: under the byte cap, a provider that
    ignored max_tokens 100 sent 11,353 tokens for a hold of 116."""
    dense = "".join(chr(0x3400 + i) for i in range(40))
    per_piece = count_text_tokens(text=dense, model_name="fake-model").tokens
    assert per_piece >= len(dense.encode()) // 3  # dense indeed: about a token a character
    fake_upstream.default = Behaviour(chunks=[dense] * 200)

    frames = await turn(people.student, max_tokens=100)

    assert frames[-1]["error_code"] == "upstream_too_large" and frames[-1]["status"] == "interrupted"
    relayed = "".join(f["text"] for f in frames if f["type"] == "chat.delta")
    assert count_text_tokens(text=relayed, model_name="fake-model").tokens <= 100 + 256
    entry = await LedgerEntry.objects.aget()
    assert entry.completion_tokens <= 100 + 256


async def test_a_long_reply_that_keeps_to_its_max_tokens_is_not_cut(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    words = "The quick brown fox jumps over the lazy dog. "
    fake_upstream.default = Behaviour(chunks=[words] * 100)  # about 1,000 tokens

    frames = await turn(people.student, max_tokens=1000)

    assert frames[-1]["status"] == "complete"
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == words * 100


USAGE = json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake-model", "choices": [],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})  # fmt: skip


@pytest.mark.parametrize(
    ("events", "billed"),
    [
        ([chunk("Hi "), chunk("there."), chunk(finish="stop"), USAGE], (9, 2)),  # all but [DONE]
        ([chunk("Hi "), chunk("there."), chunk(finish="stop")], None),  # the usage report too
    ],
    ids=["after-usage", "before-usage"],
)
async def test_a_connection_cut_after_the_finish_reason_ends_a_complete_reply(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, events: list[str], billed: Any
) -> None:
    """The reply was whole (the provider said why it finished); only the stream's end went
    missing. It was saved as broken off (`upstream_dropped`), and over /v1 a 502 without the
    text the caller was billed for."""
    fake_upstream.default = Behaviour(raw_events=events, cut_at_end=True)

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    assert "error" not in frames[-1]
    reply = await Message.objects.aget(role=Message.Role.ASSISTANT)
    assert (reply.status, reply.content, reply.error_code) == ("complete", "Hi there.", "")
    entry = await LedgerEntry.objects.aget()
    assert entry.status == "complete"
    if billed is not None:
        assert (entry.prompt_tokens, entry.completion_tokens, entry.usage_source) == (*billed, "provider")
    else:
        assert entry.usage_source == "counted" and entry.completion_tokens > 0
    assert len(fake_upstream.chat_requests()) == 1


async def test_a_stop_set_before_the_call_sends_the_provider_nothing(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The stop came while the turn was being prepared: the provider is never asked."""
    from apps.conversations.pipeline import ChatRequest, Finished, completion_run

    stop = asyncio.Event()
    stop.set()
    request = ChatRequest(conversation_id=None, model=MODEL, content="Hello")
    events = [event async for event in completion_run(identify=lambda: people.student, request=request, stop=stop)]

    assert isinstance(events[-1], Finished) and events[-1].outcome.usage.status == "stopped"
    assert events[-1].outcome.usage.prompt_tokens == 0
    assert not fake_upstream.chat_requests()


@pytest.mark.parametrize(
    ("behaviour", "billed"),
    [
        # The provider refused the request (429, retry in 2 s) and the student stopped while
        # webchat waited: no provider bills a refused request, so the stopped reply is free,
        # as the same request failing would be.
        (Behaviour(status=429, retry_after="2"), False),
        # The provider took the request (200) and is silent: it may bill the prompt, text or
        # not, so webchat does.
        (Behaviour(stall_before=0, stall=3.0), True),
    ],
    ids=["while-a-429-is-waited-out", "after-the-provider-took-it"],
)
async def test_a_stop_before_any_text_bills_the_prompt_only_if_the_provider_may(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, behaviour: Behaviour, billed: bool
) -> None:
    fake_upstream.default = behaviour
    ws = await ws_connect(people.student)
    await ws.connect()
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": MODEL, "content": "Why?"})
    await ws_frames_until(ws, {"chat.started"})
    await asyncio.sleep(0.5)
    await ws.send_json_to({"type": "chat.stop"})
    frames = await ws_frames_until(ws, {"chat.done", "chat.error"})
    await ws.disconnect()

    assert frames[-1]["status"] == "stopped"
    entry = await LedgerEntry.objects.aget()
    assert (entry.status, entry.prompt_tokens > 0, entry.completion_tokens) == ("stopped", billed, 0)
    assert (entry.cost_billing > 0) is billed
    assert len(fake_upstream.chat_requests()) == 1


async def test_a_reply_broken_off_says_what_arrived_was_saved_only_when_something_did(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(raw_events=[chunk("Hello, "), "not json"]))
    fake_upstream.push(Behaviour(raw_events=["not json"]))

    kept = await turn(people.student)
    nothing = await turn(people.student)

    assert kept[-1]["status"] == "interrupted" and kept[-1]["error"].endswith("What arrived was saved.")
    assert nothing[-1]["type"] == "chat.error" and "saved" not in nothing[-1]["message"]
    messages = [m async for m in Message.objects.filter(role=Message.Role.ASSISTANT).order_by("pk")]
    with translation.override("zh-hans"):  # the reloaded page's label, in each language
        assert messages[0].error_text.endswith("已收到的部分已保存。") and "保存" not in messages[1].error_text
    with translation.override("en"):
        assert messages[0].error_text.endswith("What arrived was saved.") and "saved" not in messages[1].error_text


async def test_a_server_that_answers_a_stream_with_one_json_reply_is_read_as_that_reply(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Some servers (a student's own small one often) ignore `stream: true` and send the
    whole chat.completion: that is the reply, billed by its usage. It was a failed reply,
    asked three times, each of which the server billed."""
    fake_upstream.default = Behaviour(ignore_stream=True, chunks=["Hello ", "from JSON."], usage=(12, 4))

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == "Hello from JSON."
    entry = await LedgerEntry.objects.aget()
    assert (entry.status, entry.prompt_tokens, entry.completion_tokens, entry.usage_source) == (
        "complete",
        12,
        4,
        "provider",
    )
    assert len(fake_upstream.chat_requests()) == 1


async def test_a_json_reply_past_the_length_is_cut_as_a_stream_would_be(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The whole reply came at once, far past max_tokens: cut where a streamed one would be."""
    fake_upstream.default = Behaviour(ignore_stream=True, chunks=["word " * 20_000])

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "interrupted"
    assert frames[-1]["error_code"] == "upstream_too_large"
    reply = await Message.objects.aget(role=Message.Role.ASSISTANT)
    assert 0 < len(reply.content) <= reply_bytes_cap(1024)
    # Cut at max_tokens + 256 tokens too (a byte a token of dense text passed the byte cap
    # at 32 times that, and was billed so), and billed no more.
    tokens = count_text_tokens(text=reply.content, model_name="fake-model").tokens
    entry = await LedgerEntry.objects.aget()
    assert 1024 <= tokens <= 1024 + REPLY_OVERSHOOT_TOKENS
    assert entry.completion_tokens <= 1024 + REPLY_OVERSHOOT_TOKENS


async def test_a_stream_labelled_application_json_is_still_read_as_a_stream(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Some small servers label their SSE stream application/json: its first bytes say what
    it is, not its label."""
    fake_upstream.default = Behaviour(stream_content_type="application/json")

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == "Hello, class!"


async def test_a_cut_from_a_server_that_puts_a_finish_reason_on_every_chunk_is_still_a_cut(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """Gemini through some proxies says finish_reason "stop" on every chunk: a cut mid-reply
    is a broken-off reply, not a whole one."""
    fake_upstream.default = Behaviour(
        raw_events=[chunk("The answer is", finish="stop"), chunk(" that the", finish="stop")], cut_at_end=True
    )

    frames = await turn(people.student)

    assert frames[-1]["status"] == "interrupted" and frames[-1]["error_code"] == "upstream_dropped"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            json.dumps({"error": {"message": "overloaded", "type": "server_error"}}, indent=2),
            "failed",
            "upstream_error",
        ),
        (
            json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole."}}]}, indent=2),
            "complete",
            "",
        ),
    ],
    ids=["error-body-laid-out", "reply-without-finish-reason"],
)
async def test_a_json_answer_is_judged_whatever_its_layout(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, body: str, status: str, code: str
) -> None:
    fake_upstream.default = Behaviour(json_body=body)

    await turn(people.student)

    reply = await Message.objects.aget(role=Message.Role.ASSISTANT)
    assert (reply.status, reply.error_code) == (status, code)
