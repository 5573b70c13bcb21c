"""Whatever a browser sends, the chat socket answers with a frame and stays open, and only a
valid frame reaches the provider or writes a row.

Over the real ASGI application against the fake upstream. The bounds checked here are
the README's ("Websocket protocol"), written out again on purpose rather than imported.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from apps.billing.models import LedgerEntry, Period
from apps.billing.services import quota_policy_set
from apps.conversations.models import Message
from tests.conftest import People, ws_connect, ws_frames_until, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "fakeai/fake-model"
TYPES = ["chat.send", "chat.regenerate", "chat.edit", "chat.stop"]
PARAM_NAMES = ["temperature", "top_p", "presence_penalty", "frequency_penalty", "seed", "stop", "response_format"]
# Body fields the pipeline itself sends; every other one came from the frame's params.
OWN_FIELDS = {"model", "messages", "stream", "stream_options", "max_tokens"}


@pytest.fixture
async def socket(people: People, fake_model: Any, fake_upstream: FakeUpstream) -> AsyncIterator[WebsocketCommunicator]:
    fake_upstream.default = Behaviour(chunks=["ok"])
    # No per-minute limits: valid frames in a row must not be refused as rate_limited.
    await sync_to_async(quota_policy_set)(classroom=people.classroom, period=Period.MONTH)
    ws = await ws_connect(people.student)
    accepted, _ = await ws.connect()
    assert accepted
    yield ws
    await ws.disconnect()


async def answer(ws: WebsocketCommunicator, frame: str | bytes) -> dict[str, Any]:
    """Send a frame (an empty one too, which send_to refuses); the first frame back. Fails
    if the socket closed or its consumer crashed instead."""
    await ws.send_input({"type": "websocket.receive", "bytes" if isinstance(frame, bytes) else "text": frame})
    return json.loads(await ws.receive_from(timeout=10))


async def written() -> tuple[int, int]:
    return await Message.objects.acount(), await LedgerEntry.objects.acount()


def within_documented_bounds(body: dict[str, Any]) -> bool:
    """What reached the provider: only known parameters, each within the README's bounds."""

    def number(value: Any, low: float, high: float) -> bool:
        return type(value) in (int, float) and math.isfinite(value) and low <= value <= high

    checks = {
        "temperature": lambda v: number(v, 0, 2),
        "top_p": lambda v: number(v, 0, 1),
        "presence_penalty": lambda v: number(v, -2, 2),
        "frequency_penalty": lambda v: number(v, -2, 2),
        "seed": lambda v: type(v) is int and -(2**63) <= v < 2**63,
        "stop": lambda v: (
            isinstance(v, str) or (isinstance(v, list) and 1 <= len(v) <= 4 and all(isinstance(s, str) for s in v))
        ),
        "response_format": lambda v: isinstance(v, dict) and v.get("type") in ("text", "json_object", "json_schema"),
    }
    extra = {name: value for name, value in body.items() if name not in OWN_FIELDS}
    return (
        all(name in checks and checks[name](value) for name, value in extra.items())
        and type(body.get("max_tokens")) is int
        and body["max_tokens"] >= 1
    )


# --- What browsers (and anyone else) might send --------------------------------------------

any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)  # surrogates and NUL too
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
param_values = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-3, max_value=3)
    | st.integers()
    | any_text
    | st.lists(any_text, max_size=6)
    | st.sampled_from(
        [
            {"type": "text"},
            {"type": "json_object"},
            {"type": "yaml"},
            {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}},
            {"type": "json_schema", "json_schema": {"name": "no spaces", "schema": {}}},
        ]
    )
    | json_values
)
params = st.dictionaries(st.sampled_from(PARAM_NAMES) | any_text, param_values, max_size=3) | json_values
near_valid_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(TYPES) | json_values},
    optional={
        "conversation": st.none() | st.integers(min_value=-2, max_value=50) | json_values,
        "model": st.just(MODEL) | json_values,
        "content": any_text | json_values,
        "params": params,
        "max_tokens": st.integers(min_value=-2, max_value=5000) | json_values,
        "message": st.integers(min_value=-2, max_value=50) | json_values,
        "after": st.integers(min_value=-2, max_value=50) | json_values,
    },
).map(json.dumps)  # NaN and Infinity come out as the literals Python's json reads back
nested = st.integers(min_value=1, max_value=40_000).flatmap(
    lambda depth: st.sampled_from(
        [
            "[" * depth + "]" * depth,
            '{"a":' * depth + "1" + "}" * depth,
            '{"type": "chat.send", "params": ' + "[" * depth + "]" * depth + "}",
        ]
    )
)
sendable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30)
valid_params = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.floats(0, 2),
        "top_p": st.floats(0, 1),
        "presence_penalty": st.floats(-2, 2),
        "frequency_penalty": st.integers(-2, 2),
        "seed": st.integers(-(2**63), 2**63 - 1),
        "stop": sendable_text.filter(lambda t: len(t) <= 100) | st.lists(sendable_text, min_size=1, max_size=4),
        "response_format": st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
    },
)
# Mostly valid chat.send frames, some with one field drawn from anything at all.
send_frames = st.fixed_dictionaries(
    {
        "type": st.just("chat.send"),
        "conversation": st.none(),
        "model": st.just(MODEL),
        "content": sendable_text.filter(str.strip) | any_text,
        "params": valid_params | params,
        "max_tokens": st.none() | st.integers(min_value=1, max_value=5000) | json_values,
    }
).map(json.dumps)
frames = st.one_of(
    send_frames, send_frames, near_valid_frames, json_values.map(json.dumps), any_text, nested, st.binary(max_size=20)
)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=frames)
async def test_every_frame_gets_an_answer_and_only_a_valid_one_reaches_the_provider(
    socket: WebsocketCommunicator, fake_upstream: FakeUpstream, frame: str | bytes
) -> None:
    before, calls = await written(), len(fake_upstream.chat_requests())

    first = await answer(socket, frame)

    assert first["type"] in ("chat.error", "chat.started")
    event(first["type"] if first["type"] == "chat.started" else first["code"])
    if first["type"] == "chat.error":
        assert first["code"] != "internal_error" and first["message"]
        assert await written() == before and len(fake_upstream.chat_requests()) == calls
    else:
        last = (await ws_frames_until(socket, {"chat.done", "chat.error"}))[-1]
        assert last["type"] == "chat.done", last
        sent = fake_upstream.chat_requests()[calls:]
        assert len(sent) == 1 and within_documented_bounds(sent[0].body), sent[0].body
    assert not socket.future.done()  # the consumer is still running


# --- The frames that used to crash it, and the documented bounds ---------------------------


def send(**fields: Any) -> str:
    return json.dumps({"type": "chat.send", "conversation": None, "model": MODEL, "content": "hi", **fields})


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps({"type": ["chat.send"]}), id="type is a list"),
        pytest.param(json.dumps({"type": {"chat.send": 1}}), id="type is an object"),
        pytest.param("[" * 30_000 + "]" * 30_000, id="30000 nested brackets"),
        pytest.param(
            send(
                params={
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": {"name": "deep", "schema": json.loads('{"a":' * 200 + "{}" + "}" * 200)},
                    }
                }
            ),
            id="schema nested 200 deep",
        ),
        pytest.param(send(content="\ud800"), id="lone surrogate in content"),
        pytest.param(send(model="fakeai/\udfff"), id="lone surrogate in model"),
        pytest.param(send(content="a\x00b"), id="NUL in content"),
        pytest.param(send(params={"\ud800": 1}), id="lone surrogate in a parameter name"),
        pytest.param(send(params={"temperature": float("nan")}), id="temperature NaN"),
        pytest.param(send(params={"temperature": float("inf")}), id="temperature Infinity"),
        pytest.param(send(params={"temperature": 1e999}), id="temperature 1e999"),
        pytest.param(send(params={"temperature": 2.01}), id="temperature above 2"),
        pytest.param(send(params={"temperature": True}), id="temperature true"),
        pytest.param(send(params={"top_p": -0.1}), id="top_p below 0"),
        pytest.param(send(params={"top_p": 10**400}), id="top_p beyond a float"),
        pytest.param(send(params={"presence_penalty": 2.5}), id="presence_penalty above 2"),
        pytest.param(send(params={"frequency_penalty": -3}), id="frequency_penalty below -2"),
        pytest.param(send(params={"seed": 2**63}), id="seed beyond int64"),
        pytest.param(send(params={"seed": 1.5}), id="seed not whole"),
        pytest.param(send(params={"stop": ["a", "b", "c", "d", "e"]}), id="five stop strings"),
        pytest.param(send(params={"stop": [1]}), id="stop not strings"),
        pytest.param(send(params={"stop": ""}), id="stop empty"),
        pytest.param(send(params={"response_format": {"type": "yaml"}}), id="response_format type unknown"),
        pytest.param(send(params={"response_format": {"type": "json_schema"}}), id="response_format schema missing"),
        pytest.param(send(params={"best_of": 2}), id="unsupported parameter"),
        pytest.param(send(params=[1]), id="params not an object"),
        pytest.param(send(max_tokens=0), id="max_tokens 0"),
        pytest.param(send(max_tokens=-5), id="max_tokens negative"),
        pytest.param(send(max_tokens=True), id="max_tokens true"),
        pytest.param(send(conversation=2**70), id="conversation id beyond bigint"),
        pytest.param(send(conversation=0), id="conversation id 0"),
        pytest.param(
            json.dumps({"type": "chat.regenerate", "conversation": float("nan"), "model": MODEL}),
            id="regenerate conversation NaN",
        ),
    ],
)
async def test_a_malformed_frame_gets_bad_request_writes_nothing_and_the_socket_stays_usable(
    socket: WebsocketCommunicator, fake_upstream: FakeUpstream, text: str
) -> None:
    error = await answer(socket, text)

    assert (error["type"], error["code"]) == ("chat.error", "bad_request") and error["message"]
    assert await written() == (0, 0)
    assert fake_upstream.chat_requests() == []
    assert (await ws_turn(socket, model=MODEL, content="still there?"))[-1]["type"] == "chat.done"


async def test_parameters_within_the_bounds_reach_the_provider_as_sent(
    socket: WebsocketCommunicator, fake_upstream: FakeUpstream
) -> None:
    sampling = {
        "temperature": 2,
        "top_p": 0.0,
        "presence_penalty": -2,
        "frequency_penalty": 1.5,
        "seed": -(2**63),
        "stop": ["\n\n", "END", "。", "x"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "strict": True,
                "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
            },
        },
    }

    frames = await ws_turn(socket, model=MODEL, content="Reply in JSON.", params=sampling, max_tokens=64)

    assert frames[-1]["type"] == "chat.done"
    body = fake_upstream.chat_requests()[0].body
    assert {name: body[name] for name in sampling} == sampling
    assert body["max_tokens"] == 64


async def test_a_refused_parameter_is_named_in_the_pages_language(
    people: People, fake_model: Any, fake_upstream: FakeUpstream
) -> None:
    ws = await ws_connect(people.student, language="zh-hans")
    await ws.connect()

    error = await answer(ws, send(params={"best_of": 2}))

    assert (error["code"], error["message"]) == ("bad_request", "不支持的参数：best_of。")
    await ws.disconnect()
