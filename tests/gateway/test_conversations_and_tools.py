"""/v1 requests carry their own conversation and tools, as OpenAI's API takes them, with the
real openai SDK over HTTP against the live ASGI app and the fake upstream. API calls are
not chat conversations: their only record is the ledger row."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

import webchat.asgi  # noqa: F401  (loads the ASGI app before any test captures logs)
from apps.accounts.models import Classroom
from apps.billing.models import LedgerEntry
from apps.conversations.models import Conversation, Message
from apps.conversations.pipeline import ChatRequest
from apps.providers.models import ChatModel
from tests.conftest import LiveServer, People
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.gateway.conftest import MODEL, client_for
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db(transaction=True)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def _tool_call_events() -> list[str]:
    """A model calling get_weather(city="Beijing"), its arguments in two pieces, then usage."""
    return [
        _chunk({"role": "assistant", "content": None}),
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Beijing"}'}}]}),
        _chunk({}, "tool_calls"),
        json.dumps(
            {
                "id": "x",
                "object": "chat.completion.chunk",
                "choices": [],
                "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52},
            }
        ),
        "[DONE]",
    ]


def test_the_whole_conversation_reaches_the_provider_after_the_class_instructions(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People, fake_upstream: FakeUpstream
) -> None:
    Classroom.objects.filter(pk=people.classroom.pk).update(system_prompt="Answer like a patient tutor.")
    conversation = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is a token?"},
        {"role": "assistant", "content": "A piece of text."},
        {"role": "developer", "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "examples."}]},
        {"role": "user", "content": "Show me one."},
    ]
    completion = client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=conversation)
    assert completion.choices[0].message.content == "Hello, class!"
    assert completion.choices[0].finish_reason == "stop"
    sent = fake_upstream.chat_requests()[-1].body["messages"]
    assert sent == [
        {"role": "system", "content": "Answer like a patient tutor."},
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is a token?"},
        {"role": "assistant", "content": "A piece of text."},
        {"role": "system", "content": "Use examples."},
        {"role": "user", "content": "Show me one."},
    ]
    # Not a chat conversation: only the ledger row records it.
    assert not Conversation.objects.exists() and not Message.objects.exists()
    entry = LedgerEntry.objects.get()
    assert entry.entry_point == "api" and entry.status == "complete" and entry.first_chunk_ms is not None


def test_null_parameters_mean_the_defaults(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """Libraries built on the SDK often send null for what they leave unset."""
    completion = client_for(live_asgi, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        temperature=None,
        top_p=None,
        stop=None,
        n=None,
        user="student-42",
        extra_body={"seed": None, "max_tokens": None},
    )
    assert completion.choices[0].message.content == "Hello, class!"
    body = fake_upstream.chat_requests()[-1].body
    assert "temperature" not in body and "seed" not in body and "user" not in body


def test_nulls_inside_a_response_format_and_tools_mean_not_given_as_at_the_top(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client_for(live_asgi, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hi"}],
        response_format={  # type: ignore[arg-type]
            "type": "json_schema",
            "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": None, "description": None},
        },
        top_logprobs=0,
        logprobs=False,
        extra_body={"audio": None},
    )
    body = fake_upstream.chat_requests()[-1].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "p", "schema": {"type": "object"}},
    }
    assert "audio" not in body and "logprobs" not in body and "top_logprobs" not in body


def test_a_message_name_follows_openais_rule_not_the_function_names_one(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """A speaker's name (LangChain's HumanMessage(name=...), an agent's in a multi-agent
    framework) may be any text without blanks or < | \\ / >, as OpenAI takes it."""
    names = ["张三", "Dr.Smith", "agent@team-1"]
    client_for(live_asgi, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": f"hi from {name}", "name": name} for name in names],  # type: ignore[misc]
    )
    sent = fake_upstream.chat_requests()[-1].body["messages"]
    assert [message["name"] for message in sent] == names


def test_tool_calls_stream_through_piece_by_piece(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(raw_events=_tool_call_events()))
    stream = client_for(live_asgi, key).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Beijing?"}],
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [call for chunk in chunks if chunk.choices for call in chunk.choices[0].delta.tool_calls or []]
    assert pieces[0].id == "call_1" and pieces[0].function is not None and pieces[0].function.name == "get_weather"
    assert "".join(piece.function.arguments or "" for piece in pieces if piece.function) == '{"city": "Beijing"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    sent = fake_upstream.chat_requests()[-1].body
    assert sent["tools"] == [WEATHER_TOOL] and sent["tool_choice"] == "auto"
    entry = LedgerEntry.objects.get()
    assert entry.status == "complete" and entry.completion_tokens == 12


def test_tool_calls_come_back_whole_without_streaming_and_the_result_goes_back(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)
    fake_upstream.push(Behaviour(raw_events=_tool_call_events()))
    ask = [{"role": "user", "content": "Weather in Beijing?"}]
    completion = client.chat.completions.create(model=MODEL, messages=ask, tools=[WEATHER_TOOL])
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls" and message.content is None
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.id == "call_1" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Beijing"}
    # The lesson's next step: run the tool and send its result back.
    follow_up = [
        *ask,
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "Hello, class!"
    sent = fake_upstream.chat_requests()[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Beijing"}'}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"}
    assert LedgerEntry.objects.count() == 2


def test_tool_calls_and_tool_definitions_count_in_the_prompt_the_hold_is_taken_for(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """What the model reads besides the messages' text (the tool calls' arguments, the tools'
    definitions, a response format's schema) is billed by the provider as prompt: the hold
    and the window check count it too, or a few kilobytes of arguments would pass a quota
    and be billed as a handful of tokens."""
    from apps.billing.models import Hold

    tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "description": "weather " * 2_000}}
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Beijing " * 3_000})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=messages, tools=[tool], max_tokens=10)  # type: ignore[arg-type]
    assert Hold.objects.get().prompt_tokens > 5_000  # 2,000 of the description, 3,000 of the arguments
    ChatModel.objects.filter(pk=fake_model.pk).update(context_window=4_000)
    from apps.providers.selectors import price_cache_forget

    price_cache_forget()
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=messages, tools=[tool])  # type: ignore[arg-type]
    assert error.value.code == "context_length_exceeded"


def test_a_reply_cut_at_max_tokens_says_length(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(raw_events=[_chunk({"content": "Once upon"}), _chunk({}, "length"), "[DONE]"]))
    completion = client_for(live_asgi, key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "A story"}], max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Once upon"


def test_tools_are_refused_for_a_model_that_takes_none(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    ChatModel.objects.filter(pk=fake_model.pk).update(supports_tools=False)
    from apps.providers.selectors import price_cache_forget

    price_cache_forget()
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_asgi, key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], tools=[WEATHER_TOOL]
        )
    assert error.value.body["param"] == "tools"  # type: ignore[index]
    assert not fake_upstream.chat_requests() and not LedgerEntry.objects.exists()


def test_the_demo_calls_tools_and_answers_in_json_so_those_lessons_work_offline(
    live_asgi: LiveServer, demo_model: ChatModel, key: str
) -> None:
    """The built-in demo (no key, no network) makes a tool call fitting the tool's schema,
    answers after the tool's result, and gives JSON that fits a json_schema, so the SDK's
    own helpers (`parse`, the tool-call loop) can be tried in class."""
    from pydantic import BaseModel

    client = client_for(live_asgi, key)
    ask = [{"role": "user", "content": "Weather in Beijing?"}]
    first = client.chat.completions.create(model=demo_model.route_name, messages=ask, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "demo"}
    streamed = list(
        client.chat.completions.create(model=demo_model.route_name, messages=ask, tools=[WEATHER_TOOL], stream=True)
    )
    arguments = "".join(
        piece.function.arguments or ""
        for chunk in streamed
        if chunk.choices
        for piece in chunk.choices[0].delta.tool_calls or []
        if piece.function
    )
    assert json.loads(arguments) == {"city": "demo"}
    answer = client.chat.completions.create(
        model=demo_model.route_name,
        messages=[
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "Sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert "Sunny" in (answer.choices[0].message.content or "")

    class Lesson(BaseModel):
        title: str
        minutes: int
        topics: list[str]

    parsed = client.chat.completions.parse(model=demo_model.route_name, messages=ask, response_format=Lesson)
    assert parsed.choices[0].message.parsed == Lesson(title="demo", minutes=0, topics=["demo"])
    assert LedgerEntry.objects.filter(entry_point="api").count() == 4


def test_the_demos_tool_call_keeps_to_max_tokens_and_is_billed_within_its_hold(
    live_asgi: LiveServer, demo_model: ChatModel, key: str
) -> None:
    """max_tokens cuts a tool call as it cuts text ("length", the arguments unfinished): a
    max_tokens of 1 bought a whole call, billed 257 completion tokens against a hold of 1,
    and many at once ran a quota far past its limit."""
    client = client_for(live_asgi, key)
    ask = [{"role": "user", "content": "Weather in Beijing?"}]
    cut = client.chat.completions.create(
        model=demo_model.route_name, messages=ask, tools=[WEATHER_TOOL], tool_choice="required", max_tokens=3
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens <= 3
    entry = LedgerEntry.objects.get()
    assert entry.completion_tokens <= 3
    # A long tool name is output too.
    long_name = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "name": "x9Kq2" * 12}}
    cut = client.chat.completions.create(
        model=demo_model.route_name, messages=ask, tools=[long_name], tool_choice="required", max_tokens=3
    )
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens <= 3
    assert LedgerEntry.objects.latest("created_at").completion_tokens <= 4  # our count: within a token of it


def test_the_chat_page_cannot_send_tools() -> None:
    with pytest.raises(RequestRefused) as error:
        ChatRequest(conversation_id=None, model=MODEL, content="hi", params={"tools": [WEATHER_TOOL]})
    assert error.value.param == "tools"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}], "messages[0]"),
        ([{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}], "messages[1]"),
        ([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}], "messages[1]"),
        ([{"role": "user", "content": 5}], "messages[0]"),
        ([{"role": "user", "content": "a", "name": "no spaces allowed"}], "messages[0]"),
        ([{"role": "user", "content": "a", "name": "<script>"}], "messages[0]"),
        ([{"role": "user", "content": "a", "name": "a/b"}], "messages[0]"),
        ([{"role": "user", "content": "a", "name": ""}], "messages[0]"),
        (
            [{"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {"name": "f"}}]}],
            "messages[0]",
        ),
        ([], "messages"),
    ],
)
def test_a_malformed_conversation_is_refused_naming_the_message(
    live_asgi: LiveServer,
    fake_model: ChatModel,
    key: str,
    messages: list[dict[str, Any]],
    param: str,
    fake_upstream: FakeUpstream,
) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=messages)  # type: ignore[arg-type]
    assert error.value.body["param"] == param  # type: ignore[index]
    assert not fake_upstream.chat_requests() and not LedgerEntry.objects.exists()


def test_a_conversation_longer_than_the_model_reads_is_refused_before_anything_is_written(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    ChatModel.objects.filter(pk=fake_model.pk).update(context_window=200)
    from apps.providers.selectors import price_cache_forget

    price_cache_forget()
    long = [{"role": "user", "content": "word " * 400}]
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=long)  # type: ignore[arg-type]
    assert error.value.code == "context_length_exceeded"
    assert not fake_upstream.chat_requests() and not LedgerEntry.objects.exists()


def test_an_empty_tool_list_is_no_tools_as_openai_takes_it(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """LangChain's create_agent(tools=[]) sends `"tools": []`: OpenAI answers it as a request
    with no tools (it was a 400 here). A choice that forces a call among none is still refused."""
    client = client_for(live_asgi, key)
    ask = [{"role": "user", "content": "hi"}]

    client.chat.completions.create(model=MODEL, messages=ask, tools=[])
    client.chat.completions.create(model=MODEL, messages=ask, tools=[], tool_choice="auto", parallel_tool_calls=False)

    for body in (request.body for request in fake_upstream.chat_requests()):
        assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(body)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=ask, tools=[], tool_choice="required")
    assert refused.value.param == "tool_choice"
    assert LedgerEntry.objects.count() == 2


def test_logit_bias_reaches_the_provider_and_an_empty_one_is_not_sent(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client = client_for(live_asgi, key)
    ask = [{"role": "user", "content": "hi"}]

    client.chat.completions.create(model=MODEL, messages=ask, logit_bias={"50256": -100, "15496": 2.5})
    client.chat.completions.create(model=MODEL, messages=ask, logit_bias={})

    sent, empty = (request.body for request in fake_upstream.chat_requests())
    assert sent["logit_bias"] == {"50256": -100, "15496": 2.5} and "logit_bias" not in empty
    for bad in ({"hello": 1}, {"1": 101}, {"1": True}, {"²": 1}, {"١٢": 1}, [1], {str(n): 1 for n in range(301)}):
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model=MODEL, messages=ask, logit_bias=bad)  # type: ignore[arg-type]
        assert refused.value.param == "logit_bias"
    assert LedgerEntry.objects.count() == 2
