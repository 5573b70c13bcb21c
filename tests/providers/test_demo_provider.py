"""The built-in demo provider, called through the openai SDK over real HTTP, and the chat
using it end to end through a live ASGI server."""

from __future__ import annotations

import datetime
import json
import time
import uuid
from typing import Any, Literal

import pytest
from openai import OpenAI, RateLimitError
from pydantic import BaseModel, Field
from websockets.sync.client import connect as ws_open

from apps.conversations.models import Message
from apps.providers.demo import demo_reply_compose
from apps.providers.routes import routes_for_request
from apps.providers.tokens import count_prompt_tokens
from tests.conftest import LiveServer, People, session_cookie_for


@pytest.fixture
def sdk(live_asgi: LiveServer, demo_model) -> OpenAI:  # type: ignore[no-untyped-def]
    return OpenAI(api_key="unused", base_url=f"{live_asgi.url}/demo/v1", max_retries=0)


def test_demo_answers_json_with_usage(sdk: OpenAI) -> None:
    reply = sdk.chat.completions.create(model="demo-tutor", messages=[{"role": "user", "content": "What is a token?"}])
    text = reply.choices[0].message.content or ""
    assert "What is a token?" in text
    assert f"{reply.usage.prompt_tokens} tokens" in text
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].finish_reason == "stop"


def test_demo_streams_with_a_final_usage_chunk(sdk: OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="demo-tutor",
        messages=[{"role": "user", "content": "什么是 API？"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 20
    assert "什么是 API？" in text and "演示模型" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_demo_stream_without_include_usage_has_no_usage_chunk(sdk: OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(model="demo-tutor", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert all(c.usage is None for c in chunks)


def test_demo_honours_max_tokens(sdk: OpenAI) -> None:
    reply = sdk.chat.completions.create(model="demo-tutor", messages=[{"role": "user", "content": "hi"}], max_tokens=10)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens <= 10


def test_demo_rejects_bad_requests_like_a_provider(live_asgi: LiveServer, demo_model, client: Any) -> None:  # type: ignore[no-untyped-def]
    for body in ("not json", json.dumps({"model": "demo-tutor"}), json.dumps({"model": "demo-tutor", "messages": "x"})):
        response = client.post("/demo/v1/chat/completions", body, content_type="application/json")
        assert response.status_code == 400
        assert "message" in response.json()["error"]
    missing = client.post(
        "/demo/v1/chat/completions",
        json.dumps({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
        content_type="application/json",
    )
    assert missing.status_code == 404
    assert client.get("/demo/v1/chat/completions").status_code == 405
    huge = json.dumps({"model": "demo-tutor", "messages": [{"role": "user", "content": "x" * 3_000_000}]})
    too_large = client.post("/demo/v1/chat/completions", huge, content_type="application/json")
    assert too_large.status_code == 400
    assert too_large.json()["error"]["message"] == "The request body is too large."


def test_demo_lists_its_models(sdk: OpenAI) -> None:
    assert [m.id for m in sdk.models.list()] == ["demo-tutor"]


def test_demo_reply_is_deterministic_and_shows_the_bill(db: Any, demo_model) -> None:  # type: ignore[no-untyped-def]
    messages = [{"role": "user", "content": "How are tokens billed?"}]
    prompt = count_prompt_tokens(messages=messages, model_name="demo-tutor")
    first = demo_reply_compose(messages=messages, model_name="demo-tutor", price=None, prompt=prompt)
    assert first == demo_reply_compose(messages=messages, model_name="demo-tutor", price=None, prompt=prompt)
    assert "How are tokens billed?" in first and "Total tokens = input + output" in first


def test_student_chats_with_the_demo_model_over_a_real_websocket(
    live_asgi: LiveServer, people: People, demo_model
) -> None:  # type: ignore[no-untyped-def]
    cookie = session_cookie_for(people.student)
    with ws_open(
        f"ws://127.0.0.1:{live_asgi.port}/ws/chat/",
        origin=live_asgi.url,
        additional_headers={"Cookie": f"sessionid={cookie}"},
    ) as socket:
        socket.send(
            json.dumps(
                {
                    "type": "chat.send",
                    "conversation": None,
                    "model": "demo/demo-tutor",
                    "content": "Why do long chats cost more?",
                }
            )
        )
        frames = []
        while not frames or frames[-1]["type"] not in ("chat.done", "chat.error"):
            frames.append(json.loads(socket.recv(timeout=20)))
    done = frames[-1]
    assert done["type"] == "chat.done" and done["status"] == "complete", frames[-1]
    deltas = [f["text"] for f in frames if f["type"] == "chat.delta"]
    assert len(deltas) > 20
    reply = Message.objects.get(pk=done["message"])
    assert reply.content == "".join(deltas)
    assert "Why do long chats cost more?" in reply.content
    assert reply.usage_source == "provider" and reply.prompt_tokens == done["usage"]["prompt_tokens"]


def test_the_public_demo_endpoint_is_limited_per_address_but_not_for_webchat_itself(
    live_asgi: LiveServer, demo_model: Any, settings: Any, people: People
) -> None:
    """/demo/v1 has no account behind it: a public caller gets DEMO_PUBLIC_RPM requests a
    minute per address, then OpenAI's 429 with Retry-After. webchat's own calls (metered in
    the chat and on /v1) carry the internal key and go on."""
    from apps.providers.demo import demo_internal_key

    settings.DEMO_PUBLIC_RPM = 3
    public = OpenAI(api_key="anything", base_url=f"{live_asgi.url}/demo/v1", max_retries=0)
    ask = {"model": demo_model.name, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(RateLimitError) as limited:
        for _ in range(settings.DEMO_PUBLIC_RPM + 1):  # earlier calls this minute count too
            public.chat.completions.create(**ask)
    assert 1 <= int(limited.value.response.headers["Retry-After"]) <= 60
    assert "/v1" in limited.value.message
    ours = OpenAI(api_key=demo_internal_key(), base_url=f"{live_asgi.url}/demo/v1", max_retries=0)
    assert ours.chat.completions.create(**ask).choices[0].message.content
    # The demo model's route (chat and /v1) is the one that carries it.
    route = routes_for_request(model=demo_model, user=people.student, classroom=people.classroom)[0]
    assert route.api_key == demo_internal_key() and demo_internal_key() not in repr(route)


def test_the_demo_fills_a_json_schema_with_small_fitting_values() -> None:
    from apps.providers.demo import demo_value_for

    schema = {
        "type": "object",
        "properties": {
            "level": {"enum": ["easy", "hard"]},
            "score": {"type": "number", "minimum": 1},
            "ok": {"type": ["boolean", "null"]},
            "owner": {"$ref": "#/$defs/Person"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
        },
        "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    assert demo_value_for(schema) == {
        "level": "easy",
        "score": 1,
        "ok": False,
        "owner": {"name": "demo"},
        "tags": ["demo", "demo"],
        "maybe": 0,
    }
    looping = {"$ref": "#"}  # a schema that refers to itself ends, it does not recurse forever
    assert demo_value_for(looping) is None


def _fanned_out_schema(levels: int, width: int) -> dict[str, Any]:
    """A couple of kilobytes whose every level refers `width` times to the next: width**levels
    values if each reference were expanded without end."""
    defs = {
        f"L{level}": {
            "type": "object",
            "properties": {f"p{i}": {"$ref": f"#/$defs/L{level + 1}"} for i in range(width)},
        }
        for level in range(levels)
    }
    defs[f"L{levels}"] = {"type": "array", "items": {"const": "x" * 1000}, "minItems": 3}
    return {"$ref": "#/$defs/L0", "$defs": defs}


def test_a_schema_that_fans_out_builds_a_bounded_value() -> None:
    """40**4 (about 2.6 million) values, each copying a 1,000-character const three times, from
    6 KB of schema: the demo builds at most SCHEMA_VALUES_MAX values and copies at most
    SCHEMA_COPIED_BYTES_MAX, on the event loop every socket of the process shares."""
    from apps.providers.demo import SCHEMA_COPIED_BYTES_MAX, SCHEMA_VALUES_MAX, demo_value_for

    schema = _fanned_out_schema(4, 40)
    assert len(json.dumps(schema)) < 7_000
    value = json.dumps(demo_value_for(schema))
    assert len(value) < SCHEMA_COPIED_BYTES_MAX + SCHEMA_VALUES_MAX * 20
    assert value.startswith('{"p0": {"p0": {"p0": {"p0": ["' + "x" * 1000)  # it still fits, as far as it goes


def test_a_wide_object_at_the_depth_limit_counts_as_wide_as_it_is() -> None:
    """Its properties are all null there, but each is a key and a value of the answer: 400
    copies of a 10,000-property object were 178 MB of JSON from a 132 KB request, 30 s
    of a frozen event loop."""
    from apps.providers.demo import SCHEMA_COPIED_BYTES_MAX, SCHEMA_VALUES_MAX, demo_value_for

    wide = {"type": "object", "properties": {f"property{i}": {"type": "string"} for i in range(10_000)}}
    deep: dict[str, Any] = wide
    for _level in range(12):  # the object at the depth limit
        deep = {"type": "array", "items": deep, "minItems": 400}
    value = json.dumps(demo_value_for(deep))
    assert len(value) < SCHEMA_COPIED_BYTES_MAX + SCHEMA_VALUES_MAX * 20


def _nested_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": {}}
    inner = schema
    for _ in range(depth):
        inner["properties"]["a"] = {"type": "object", "properties": {}}
        inner = inner["properties"]["a"]
    return schema


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"function": "x"}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array", "items": "x"}}}]},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": _nested_schema(400)}}]},
        {"tools": "x", "tool_choice": "required"},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": "x"}}},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": _nested_schema(400)}}},
        {"stream": True, "stream_options": "x"},
        {"max_tokens": float("inf")},
        {"messages": [{"role": "tool", "content": 5}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    ],
)
def test_the_public_demo_endpoint_answers_odd_bodies_without_failing(demo_model: Any, extra: dict[str, Any]) -> None:
    """/demo/v1 is open to anyone (rate-limited per address): a body of the wrong shapes gets
    an answer or a 400, never a 500."""
    from django.test import Client

    body = {"model": "demo-tutor", "messages": [{"role": "user", "content": "hi"}], **extra}
    response = Client(raise_request_exception=False).post(
        "/demo/v1/chat/completions", data=json.dumps(body), content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:300]


class _Node(BaseModel):
    name: str
    children: list[_Node]


class _Constrained(BaseModel):
    """What pydantic models ask of structured output: formats, lengths, bounds, patterns."""

    when: datetime.date
    at: datetime.datetime
    id: uuid.UUID
    title: str = Field(min_length=5)
    code: str = Field(max_length=2)
    share: float = Field(gt=0.5)
    below: int = Field(le=-1)
    fives: int = Field(multiple_of=5, ge=3)
    fraction: float = Field(gt=0, lt=1)
    none: list[str] = Field(max_length=0)
    zip_code: str = Field(pattern=r"^\d{5}$")
    ticket: str = Field(pattern=r"^[A-Z]{2}-\d+$")
    tree: _Node
    level: Literal["easy", "hard"]


def test_the_demos_structured_output_passes_the_callers_own_validation(sdk: OpenAI) -> None:
    """The SDK's parse() validates the answer with the caller's pydantic model: "demo" for a
    date and 0 for gt=0.5 raised 9 validation errors; a recursive model ended in nulls."""
    parsed = sdk.chat.completions.parse(
        model="demo-tutor", messages=[{"role": "user", "content": "Fill it in"}], response_format=_Constrained
    )
    value = parsed.choices[0].message.parsed
    assert isinstance(value, _Constrained)
    assert value.tree.children[0].children == []  # a recursive schema ends in empty lists


def test_a_json_mode_request_gets_a_value_of_the_schema_its_prompt_holds(sdk: OpenAI) -> None:
    """instructor's JSON modes (and LangChain's json_mode with a prompt that shows the schema)
    write the schema into the messages and ask for json_object: answered {"reply": ...}, the
    caller's validation failed on every retry."""
    schema = json.dumps(_Node.model_json_schema(), indent=2)
    reply = sdk.chat.completions.create(
        model="demo-tutor",
        messages=[
            {"role": "system", "content": f"Answer in JSON that matches this json_schema:\n\n{schema}\n\nOnly JSON."},
            {"role": "user", "content": "A family tree"},
        ],
        response_format={"type": "json_object"},
    )
    _Node.model_validate_json(reply.choices[0].message.content or "")
    plain = sdk.chat.completions.create(
        model="demo-tutor",
        messages=[{"role": "user", "content": "hi {not json"}],
        response_format={"type": "json_object"},
    )
    assert set(json.loads(plain.choices[0].message.content or "")) == {"reply"}


def test_a_forced_tool_choice_is_a_call_even_after_a_tools_result(sdk: OpenAI) -> None:
    """As OpenAI's: `required` or a named function always answers with a call (LangChain's
    structured output by tool asks for its tool after the agent's other tools answered; the
    demo answered in text and the structured response was None)."""
    tools: list[Any] = [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}},
        {"type": "function", "function": {"name": "Report", "parameters": _Node.model_json_schema()}},
    ]
    messages: list[Any] = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    named = sdk.chat.completions.create(
        model="demo-tutor",
        messages=messages,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "Report"}},
    )
    [call] = named.choices[0].message.tool_calls or []
    assert call.function.name == "Report" and named.choices[0].finish_reason == "tool_calls"
    _Node.model_validate_json(call.function.arguments)
    required = sdk.chat.completions.create(model="demo-tutor", messages=messages, tools=tools, tool_choice="required")
    assert required.choices[0].message.tool_calls
    auto = sdk.chat.completions.create(model="demo-tutor", messages=messages, tools=tools, tool_choice="auto")
    assert not auto.choices[0].message.tool_calls and "sunny" in (auto.choices[0].message.content or "")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [(r"^\d{5}$", "00000"), (r"^(foo|bar)+$", "foo"), (r"[a-z]+@[a-z]+\.com", "a@a.com"), (r"^\w{3,}$", "aaa")],
)
def test_a_string_pattern_is_matched(pattern: str, expected: str) -> None:
    from apps.providers.demo import demo_value_for

    assert demo_value_for({"type": "string", "pattern": pattern}) == expected
    # What it cannot build (a lookahead, a huge repeat) is the plain value, never an error.
    assert demo_value_for({"type": "string", "pattern": r"^(?=x)y\1"}) == "demo"
    assert demo_value_for({"type": "string", "pattern": r"^a{100000}$"}) == "demo"


@pytest.mark.parametrize(
    "schema",
    [
        # Matching (a?){n}a{n} against a's takes 2^n steps: the pattern is parsed, never run.
        {"type": "object", "properties": {f"p{i}": {"type": "string", "pattern": "(a?){40}a{40}"} for i in range(50)}},
        {"type": "string", "minLength": 10**9},
        {"type": "array", "items": {"type": "string", "minLength": 10**6}, "minItems": 3},
        {"type": "integer", "minimum": 10**400},
        {"type": "number", "minimum": 1e308, "multipleOf": 1e-308},
        {"type": "number", "exclusiveMinimum": -(10**400), "maximum": 10**400, "multipleOf": 10**-400},
    ],
    ids=["catastrophic pattern", "huge minLength", "huge minLengths", "huge integer", "huge number", "huge bounds"],
)
def test_a_hostile_schema_is_answered_at_once(sdk: OpenAI, schema: dict[str, Any]) -> None:
    """The demo builds its answer on the event loop every socket of the process shares, for
    anyone (/demo/v1 needs no account): a catastrophic regex froze it for hours, a
    minLength of 10^9 built gigabytes, a bound of 10^400 was a 500."""
    started = time.monotonic()
    reply = sdk.chat.completions.create(
        model="demo-tutor",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    # The server's clock time, with room for a loaded machine: before, hours or gigabytes.
    assert time.monotonic() - started < 5
    assert len(reply.choices[0].message.content or "") < 100_000


def test_a_schema_looked_for_in_many_messages_has_one_budget() -> None:
    """JSON mode looks for a schema in the prompt, on the event loop: 38 messages each
    holding 64 starts of deep JSON spent 3.3 s of it (the budget was per message). CPU time
    of this thread, not the clock: make test runs three suites on two cores."""
    from apps.providers.demo import demo_structured_reply

    text = '{"a": ' * 64 + "[" + "1," * 30_000
    started = time.thread_time()
    reply = demo_structured_reply(
        response_format={"type": "json_object"}, text="hi", messages=[{"role": "user", "content": text}] * 38
    )
    assert time.thread_time() - started < 0.5
    assert reply == '{"reply": "hi"}'


def test_a_pattern_of_a_lone_surrogate_is_not_built() -> None:
    """It could not be sent as UTF-8: the streamed answer broke off with a server error."""
    from apps.providers.demo import demo_value_for

    assert demo_value_for({"type": "string", "pattern": "^\\ud800$"}) == "demo"
    assert demo_value_for({"type": "string", "pattern": "^[\\ud800-\\udfff]$"}) == "demo"
