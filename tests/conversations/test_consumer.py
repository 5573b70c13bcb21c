"""The chat websocket end to end: real ASGI app, real SDK, fake upstream over HTTP."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from apps.conversations.models import Conversation, Message
from tests.conftest import People, wait_until, ws_connect, ws_frames_until, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


async def connected(user: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
    communicator = await ws_connect(user, **kwargs)
    accepted, _ = await communicator.connect()
    assert accepted
    return communicator


async def test_reply_streams_chunk_by_chunk_and_is_saved(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["Tokens ", "are ", "pieces ", "of text."], usage=(21, 4))
    ws = await connected(people.student)

    frames = await ws_turn(ws, model="fakeai/fake-model", content="What is a token?")

    assert [f["type"] for f in frames] == ["chat.started"] + ["chat.delta"] * 4 + ["chat.done"]
    assert "".join(f["text"] for f in frames if f["type"] == "chat.delta") == "Tokens are pieces of text."
    started, done = frames[0], frames[-1]
    assert done["status"] == "complete"
    assert done["usage"] == {"prompt_tokens": 21, "completion_tokens": 4}
    assert done["message"] == started["message"]
    reply = await Message.objects.select_related("conversation").aget(pk=done["message"])
    assert reply.content == "Tokens are pieces of text."
    assert reply.status == Message.Status.COMPLETE
    assert reply.usage_source == Message.UsageSource.PROVIDER
    assert reply.conversation.owner_id == people.student.pk
    assert reply.conversation_id == started["conversation"]
    assert reply.conversation.classroom_id == people.classroom.pk
    question = await Message.objects.aget(conversation_id=started["conversation"], role=Message.Role.USER)
    assert question.content == "What is a token?"
    sent = fake_upstream.chat_requests()[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == [{"role": "user", "content": "What is a token?"}]
    await ws.disconnect()


async def test_second_turn_sends_the_conversation_so_far(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["First answer."])
    ws = await connected(people.student)
    first = await ws_turn(ws, model="fakeai/fake-model", content="One?")
    conversation_id = first[0]["conversation"]

    second = await ws_turn(ws, model="fakeai/fake-model", content="Two?", conversation=conversation_id)

    assert second[0]["conversation"] == conversation_id
    assert fake_upstream.chat_requests()[1].body["messages"] == [
        {"role": "user", "content": "One?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Two?"},
    ]
    assert await Message.objects.filter(conversation_id=conversation_id).acount() == 4
    await ws.disconnect()


async def test_stop_cancels_upstream_and_keeps_the_partial_reply(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["part one ", "part two ", "never", " sent"], delay=0.3)
    ws = await connected(people.student)
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "Long?"})
    frames = await ws_frames_until(ws, {"chat.delta"})
    await ws.send_json_to({"type": "chat.stop"})
    frames += await ws_frames_until(ws, {"chat.done"})

    done = frames[-1]
    assert done["status"] == "stopped"
    reply = await Message.objects.aget(pk=done["message"])
    assert reply.status == Message.Status.STOPPED
    assert reply.content.startswith("part one")
    assert "never" not in reply.content
    # No usage came from the provider, so it was counted, and the count is in the frame.
    assert reply.usage_source == Message.UsageSource.COUNTED
    assert done["usage"]["completion_tokens"] == reply.completion_tokens > 0
    # The socket is still usable afterwards.
    fake_upstream.default = Behaviour(chunks=["ok"])
    again = await ws_turn(ws, model="fakeai/fake-model", content="Short?")
    assert again[-1]["status"] == "complete"
    await ws.disconnect()


async def test_a_stop_while_the_finished_reply_renders_is_not_refused_before_its_done_frame(
    people: People, fake_model, fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The student pressed Stop as the reply ended. The turn counted as ended before its
    chat.done was built (the HTML renders on a thread): the stop got chat.error not_running
    first, and the page took that error for the turn's end and dropped the real chat.done."""
    import time

    from apps.conversations import consumers

    rendered = consumers._message_html

    def slow_render(message: Message, language: str) -> str:
        time.sleep(0.5)  # a busy server: the render waits for a core
        return rendered(message, language)

    monkeypatch.setattr(consumers, "_message_html", slow_render)
    ws = await connected(people.student)
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "hi"})
    await ws_frames_until(ws, {"chat.started"})
    await asyncio.sleep(0.3)  # the reply has ended; its chat.done is being rendered
    await ws.send_json_to({"type": "chat.stop"})
    frames = await ws_frames_until(ws, {"chat.done", "chat.error"})
    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    await ws.disconnect()


async def test_reply_completes_and_is_saved_after_the_browser_disconnects(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["a ", "b ", "c ", "d"], delay=0.1)
    ws = await connected(people.student)
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "Hi"})
    started = (await ws_frames_until(ws, {"chat.started"}))[-1]
    await ws.disconnect()

    async def finished() -> bool:
        reply = await Message.objects.aget(pk=started["message"])
        return reply.status != Message.Status.STREAMING

    await wait_until(finished)
    reply = await Message.objects.aget(pk=started["message"])
    assert reply.status == Message.Status.COMPLETE
    assert reply.content == "a b c d"


async def test_dropped_stream_is_saved_as_interrupted_with_what_arrived(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["one ", "two ", "three"], drop_after=2)
    ws = await connected(people.student)

    frames = await ws_turn(ws, model="fakeai/fake-model", content="Go")

    done = frames[-1]
    assert done["type"] == "chat.done" and done["status"] == "interrupted"
    assert done["error_code"] == "upstream_dropped"
    assert done["error"]
    reply = await Message.objects.aget(pk=done["message"])
    assert (reply.status, reply.content, reply.error_code) == ("interrupted", "one two ", "upstream_dropped")
    # Never retried once text had reached the student.
    assert len(fake_upstream.chat_requests()) == 1
    await ws.disconnect()


async def test_upstream_failure_before_any_text_saves_a_labelled_failed_reply(
    people: People, fake_model, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_MAX_ATTEMPTS = 2
    fake_upstream.push(Behaviour(status=500), Behaviour(status=500))
    ws = await connected(people.student)

    frames = await ws_turn(ws, model="fakeai/fake-model", content="Hello?")

    assert frames[0]["type"] == "chat.started"
    error = frames[-1]
    assert (error["type"], error["code"]) == ("chat.error", "upstream_error") and error["message"]
    assert error["quota"]["tokens_used"] == 0  # a failed turn costs nothing
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.error_code, reply.content) == ("failed", "upstream_error", "")
    assert len(fake_upstream.chat_requests()) == 2
    await ws.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_request"),
        ("[1, 2]", "bad_request"),
        (json.dumps({"type": "chat.dance"}), "bad_request"),
        (json.dumps({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model"}), "bad_request"),
        (
            json.dumps({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "  "}),
            "bad_request",
        ),
        (
            json.dumps({"type": "chat.send", "conversation": "7", "model": "fakeai/fake-model", "content": "x"}),
            "bad_request",
        ),
        (json.dumps({"type": "chat.send", "conversation": None, "content": "x"}), "bad_request"),
        (
            json.dumps(
                {"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "x" * 8001}
            ),
            "content_too_long",
        ),
        (
            json.dumps({"type": "chat.send", "conversation": None, "model": "nope/none", "content": "x"}),
            "model_not_allowed",
        ),
        (
            json.dumps({"type": "chat.send", "conversation": None, "model": "no-slash", "content": "x"}),
            "model_not_allowed",
        ),
        (
            json.dumps({"type": "chat.send", "conversation": 999999, "model": "fakeai/fake-model", "content": "x"}),
            "not_found",
        ),
        (json.dumps({"type": "chat.stop"}), "not_running"),
    ],
)
async def test_bad_frame_gets_a_specific_error_and_the_socket_stays_usable(
    people: People, fake_model, fake_upstream: FakeUpstream, frame: str, code: str
) -> None:
    ws = await connected(people.student)
    await ws.send_to(text_data=frame)

    error = json.loads(await ws.receive_from(timeout=5))

    assert error["type"] == "chat.error" and error["code"] == code and error["message"]
    assert await Message.objects.acount() == 0
    assert fake_upstream.chat_requests() == []
    frames = await ws_turn(ws, model="fakeai/fake-model", content="still there?")
    assert frames[-1]["type"] == "chat.done"
    await ws.disconnect()


async def test_student_cannot_send_into_another_students_conversation(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    owner_ws = await connected(people.classmate)
    mine = await ws_turn(owner_ws, model="fakeai/fake-model", content="private question")
    await owner_ws.disconnect()
    ws = await connected(people.student)

    await ws.send_json_to(
        {
            "type": "chat.send",
            "conversation": mine[0]["conversation"],
            "model": "fakeai/fake-model",
            "content": "let me in",
        }
    )
    error = json.loads(await ws.receive_from(timeout=5))

    assert error["code"] == "not_found"
    assert await Message.objects.filter(content="let me in").aexists() is False
    await ws.disconnect()


async def test_second_send_while_streaming_is_refused_as_busy(
    people: People, fake_model, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.default = Behaviour(chunks=["slow ", "reply"], delay=0.2)
    ws = await connected(people.student)
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "1"})
    await ws_frames_until(ws, {"chat.started"})
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "fakeai/fake-model", "content": "2"})

    frames = await ws_frames_until(ws, {"chat.done"})

    assert {"type": "chat.error", "code": "busy"}.items() <= next(
        f for f in frames if f["type"] == "chat.error"
    ).items()
    assert await Conversation.objects.acount() == 1
    await ws.disconnect()


async def test_socket_without_a_session_is_closed_with_4401(db: Any) -> None:
    ws = await ws_connect(None)
    accepted, _ = await ws.connect()
    # Accepted, then closed: a refused handshake would reach the browser as HTTP 403.
    assert accepted is True
    assert await ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}


async def test_socket_from_a_foreign_origin_is_refused(people: People) -> None:
    ws = await ws_connect(people.student, origin=b"https://evil.example")
    accepted, _ = await ws.connect()
    assert accepted is False


async def test_error_messages_follow_the_pages_language(people: People, fake_model) -> None:
    ws = await connected(people.student, language="zh-hans")
    await ws.send_json_to({"type": "chat.send", "conversation": None, "model": "nope/none", "content": "x"})
    error = json.loads(await ws.receive_from(timeout=5))
    assert error["code"] == "model_not_allowed"
    assert error["message"] == "模型“nope/none”不存在，或你无权使用。"
    await ws.disconnect()


async def test_a_fault_before_the_reply_gets_one_internal_error_and_the_socket_goes_on(
    people: People, fake_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.conversations import pipeline

    real_prepare = pipeline.turn_prepare

    def broken_prepare(**kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    communicator = await ws_connect(people.student)
    await communicator.connect()
    monkeypatch.setattr(pipeline, "turn_prepare", broken_prepare)
    frames = await ws_turn(communicator, model="fakeai/fake-model", content="Hello?")
    assert [f["type"] for f in frames] == ["chat.error"] and frames[0]["code"] == "internal_error"
    assert await communicator.receive_nothing(timeout=0.3)  # exactly one closing frame

    monkeypatch.setattr(pipeline, "turn_prepare", real_prepare)
    frames = await ws_turn(communicator, model="fakeai/fake-model", content="Hello again")
    assert frames[-1]["type"] == "chat.done" and frames[-1]["status"] == "complete"
    await communicator.disconnect()
