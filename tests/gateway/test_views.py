"""The OpenAI-compatible /v1 endpoints, called with the real openai SDK over HTTP against the
live ASGI app, whose pipeline calls the fake upstream."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import openai
import pytest
from django.utils import timezone

# Loading the ASGI app sets Django's logging up again, which drops pytest's log capture:
# load it now, before any test captures logs.
import webchat.asgi  # noqa: E402,F401,I001
from apps.billing.models import LedgerEntry, Period
from apps.billing.services import quota_policy_set
from apps.gateway.services import api_key_create, api_key_revoke
from apps.providers.models import ChatModel
from tests.conftest import LiveServer, People
from tests.fake_upstream import Behaviour, FakeUpstream
from tests.gateway.conftest import MODEL, client_for

pytestmark = pytest.mark.django_db(transaction=True)
ASK = [{"role": "user", "content": "Say hello"}]


def test_the_models_list_holds_the_models_the_student_may_use(
    live_asgi: LiveServer, fake_model: ChatModel, key: str
) -> None:
    models = client_for(live_asgi, key).models.list()
    by_id = {model.id: model for model in models.data}
    assert MODEL in by_id and by_id[MODEL].owned_by == "fakeai" and by_id[MODEL].object == "model"


def test_a_reply_comes_back_with_usage_and_one_api_ledger_row(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People
) -> None:
    completion = client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, max_tokens=50)
    assert completion.choices[0].message.content == "Hello, class!"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    entries = list(LedgerEntry.objects.all())
    assert len(entries) == 1
    assert entries[0].entry_point == "api" and entries[0].user_id == people.student.pk
    assert entries[0].completion_tokens == completion.usage.completion_tokens


def test_a_streamed_reply_ends_with_usage(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    stream = client_for(live_asgi, key).chat.completions.create(
        model=MODEL, messages=ASK, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "Hello, class!"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert LedgerEntry.objects.get().entry_point == "api"


@pytest.mark.parametrize("stream", [False, True])
def test_the_usage_reported_is_what_was_billed_when_the_provider_claims_absurd_counts(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """The provider's counts are bounded when settling; the client is told what the ledger
    billed, as the usage page shows it, not the provider's claim."""
    fake_upstream.default = Behaviour(usage=(10**13, 10**13))
    client = client_for(live_asgi, key)
    if stream:
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=ASK, max_tokens=50, stream=True, stream_options={"include_usage": True}
            )
        )
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=50).usage
    entry = LedgerEntry.objects.get()
    assert entry.usage_review == "clamped"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (entry.prompt_tokens, entry.completion_tokens)
    assert usage.total_tokens == entry.prompt_tokens + entry.completion_tokens < 10**6


def test_a_stream_without_include_usage_still_reports_usage_on_its_last_chunk(
    live_asgi: LiveServer, fake_model: ChatModel, key: str
) -> None:
    chunks = list(client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_the_async_client_streams_too(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    client = openai.AsyncOpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=0)
    stream = await client.chat.completions.create(model=MODEL, messages=ASK, stream=True)
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == "Hello, class!"
    await client.close()


def http(method: str, url: str, *, body: object = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_a_request_without_a_key_gets_openais_401_body(live_asgi: LiveServer, fake_model: ChatModel) -> None:
    # The SDK will not send a request without a key, so this one goes by hand.
    status, body = http("POST", live_asgi.url + "/v1/chat/completions", body={"model": MODEL, "messages": ASK})
    assert status == 401
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == "invalid_api_key"
    assert http("GET", live_asgi.url + "/v1/models")[0] == 401
    assert not LedgerEntry.objects.exists()


def test_the_wrong_method_is_refused(live_asgi: LiveServer, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    assert http("GET", live_asgi.url + "/v1/chat/completions", headers=headers)[0] == 405
    assert http("POST", live_asgi.url + "/v1/models", body={}, headers=headers)[0] == 405


@pytest.mark.parametrize("which", ["malformed", "unknown", "revoked", "expired"])
def test_a_bad_key_raises_authentication_error(
    live_asgi: LiveServer, fake_model: ChatModel, people: People, which: str
) -> None:
    if which == "malformed":
        presented = "not-a-webchat-key"
    elif which == "unknown":
        presented = "wc-" + "a" * 43
    elif which == "revoked":
        row, presented = api_key_create(user=people.student)
        api_key_revoke(key=row)
    else:
        _, presented = api_key_create(user=people.student, expires_at=timezone.now() - timedelta(minutes=1))
    client = client_for(live_asgi, presented)
    with pytest.raises(openai.AuthenticationError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK)
    assert error.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert not LedgerEntry.objects.exists()


def test_an_unknown_model_raises_not_found_naming_it(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    """As OpenAI names it: the lesson's code asks for gpt-4o-mini, which a class may not have."""
    with pytest.raises(openai.NotFoundError) as error:
        client_for(live_asgi, key).chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert error.value.code == "model_not_found"
    assert "“gpt-4o-mini”" in error.value.message and "GET /v1/models" in error.value.message


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 5}, "temperature"),
        ({"n": 2}, "n"),
        ({"extra_body": {"api_base": "http://evil.example"}}, "api_base"),
        ({"extra_body": {"base_url": "http://evil.example"}}, "base_url"),
        ({"extra_body": {"user_id": 3}}, "user_id"),
        ({"extra_body": {"api_key": "sk-other"}}, "api_key"),
        ({"extra_body": {"extra_headers": {"X-Forwarded-For": "10.0.0.1"}}}, "extra_headers"),
        ({"extra_body": {"logprobs": True}}, "logprobs"),
        ({"extra_body": {"functions": []}}, "functions"),
        # OpenAI's types, not Python's truthiness: true and 1.0 are not n=1, 0 is not false.
        ({"extra_body": {"n": True}}, "n"),
        ({"extra_body": {"n": 1.0}}, "n"),
        ({"extra_body": {"stream": 0}}, "stream"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options"),
        # The field the caller sent is the one named.
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"max_tokens": -5}, "max_tokens"),
        # A name that ends in a newline is no name.
        ({"tools": [{"type": "function", "function": {"name": "get_weather\n"}}]}, "tools"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x\n", "schema": {}}}}, "response_format"),
        # As OpenAI refuses them: a tool choice with no tools to choose from.
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"tool_choice": "none"}, "tool_choice"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls"),
        # Checks inside a value name the field that holds it (NaN too: below, by hand).
        ({"messages": [{"role": "user", "content": "hi\u0000"}]}, "messages"),
    ],
)
def test_a_bad_parameter_raises_bad_request_naming_it(
    live_asgi: LiveServer,
    fake_model: ChatModel,
    key: str,
    extra: dict[str, Any],
    param: str,
    fake_upstream: FakeUpstream,
) -> None:
    arguments: dict[str, Any] = {"model": MODEL, "messages": ASK, **extra}
    with pytest.raises(openai.BadRequestError) as error:
        client_for(live_asgi, key).chat.completions.create(**arguments)
    assert error.value.body["param"] == param  # type: ignore[index]
    if param in ("max_tokens", "max_completion_tokens"):
        assert f"“{param}” 必须是" in error.value.body["message"]  # type: ignore[index]  (zh-hans, the default)
    assert error.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert not fake_upstream.chat_requests() and not LedgerEntry.objects.exists()


def test_a_used_up_quota_raises_rate_limit_error_saying_when_it_resets(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People
) -> None:
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, student_token_limit=10)
    client = openai.OpenAI(
        base_url=live_asgi.url + "/v1", api_key=key, max_retries=0, default_headers={"Accept-Language": "en"}
    )
    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK)
    assert error.value.code == "insufficient_quota"
    assert "resets" in error.value.message
    assert "A reply can be up to" in error.value.message and "you have 10 tokens left" in error.value.message
    assert int(error.value.response.headers["Retry-After"]) > 0


def test_a_request_over_a_minutes_tokens_raises_rate_limit_error_once_and_no_length_asked_fits(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People, fake_upstream: FakeUpstream
) -> None:
    """A hold over the tokens-per-minute limit can never pass: a RateLimitError the SDK does
    not retry (its default two retries met the same answer a minute apart), saying which
    max_tokens would fit. Without a max_tokens the reply is held to what fits."""
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, tpm=300)
    sent: list[str] = []
    client = openai.OpenAI(
        base_url=live_asgi.url + "/v1",
        api_key=key,  # the SDK's default retries
        default_headers={"Accept-Language": "en"},
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [lambda request: sent.append(request.url.path)]}),
    )
    with pytest.raises(openai.RateLimitError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=1000)
    assert sent == ["/v1/chat/completions"]
    assert error.value.code == "rate_limit_exceeded" and error.value.type == "tokens"
    assert error.value.param == "max_tokens" and "Set max_tokens to at most" in error.value.message
    assert (
        error.value.response.headers["x-should-retry"] == "false" and "Retry-After" not in error.value.response.headers
    )
    assert not fake_upstream.chat_requests() and not LedgerEntry.objects.exists()

    completion = client.chat.completions.create(model=MODEL, messages=ASK)
    assert completion.choices[0].message.content == "Hello, class!"
    asked = fake_upstream.chat_requests()[0].body
    held = asked.get("max_tokens") or asked.get("max_completion_tokens")
    assert held is not None and held + completion.usage.prompt_tokens <= 300  # type: ignore[union-attr]


def test_the_key_never_appears_in_responses_or_logs(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(live_asgi, key)
    bodies = [client.models.with_raw_response.list().text]
    bodies.append(client.chat.completions.with_raw_response.create(model=MODEL, messages=ASK).text)
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK, temperature=9)
    bodies.append(error.value.response.text)
    assert not any(key in body for body in bodies)
    assert key not in caplog.text


@pytest.mark.parametrize(
    ("behaviour", "code", "completion_tokens"),
    [
        (Behaviour(status=400), "upstream_rejected", 0),  # the provider refuses this request, each time
        (Behaviour(status=401), "upstream_auth_failed", 0),
        (Behaviour(drop_after=2), "upstream_dropped", 3),  # broke off: "Hello, " billed, 3 tokens
    ],
)
def test_an_upstream_fault_is_a_502_with_the_upstream_code_and_is_billed_once(
    live_asgi: LiveServer,
    fake_model: ChatModel,
    key: str,
    fake_upstream: FakeUpstream,
    behaviour: Behaviour,
    code: str,
    completion_tokens: int,
) -> None:
    """The SDK retries a 5xx twice by itself. A fault the same request meets again, or one
    already billed, says `x-should-retry: false`: one request upstream, one ledger row."""
    for _ in range(3):
        fake_upstream.push(behaviour)
    client = openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=2)
    with pytest.raises(openai.InternalServerError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK)
    assert error.value.status_code == 502 and error.value.code == code
    assert error.value.response.headers["x-should-retry"] == "false"
    assert len(fake_upstream.chat_requests()) == 1
    entry = LedgerEntry.objects.get()
    assert entry.entry_point == "api" and entry.completion_tokens == completion_tokens


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [
        (Behaviour(status=400), 502, "upstream_rejected"),
        (Behaviour(status=401), 502, "upstream_auth_failed"),
        (Behaviour(status=500), 502, "upstream_error"),
        (Behaviour(status=429, retry_after="0"), 503, "upstream_rate_limited"),
    ],
)
def test_a_stream_the_provider_fails_before_its_first_piece_is_answered_with_the_faults_status(
    live_asgi: LiveServer,
    fake_model: ChatModel,
    key: str,
    fake_upstream: FakeUpstream,
    settings: Any,
    behaviour: Behaviour,
    status: int,
    code: str,
) -> None:
    """As OpenAI answers a stream that cannot begin, and as the same request not streamed is
    answered: the SDK raises the exception class of the status (not a bare APIError from an
    event in a 200 stream), and retries by itself what may be retried."""
    settings.LLM_MAX_ATTEMPTS = 1
    fake_upstream.push(behaviour)
    client = openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK, stream=True)
    assert error.value.status_code == status and error.value.code == code
    assert error.value.response.headers["Content-Type"] == "application/json"
    entry = LedgerEntry.objects.get()
    assert (entry.entry_point, entry.prompt_tokens, entry.completion_tokens) == ("api", 0, 0)
    assert entry.status == "failed"


@pytest.mark.parametrize("stream", [False, True])
def test_a_provider_busy_before_answering_may_be_retried_and_costs_nothing(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream, settings: Any, stream: bool
) -> None:
    settings.LLM_MAX_ATTEMPTS = 1
    fake_upstream.push(Behaviour(status=429, retry_after="0"))
    client = openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=1)
    if stream:  # the SDK's retry gets the reply
        chunks = client.chat.completions.create(model=MODEL, messages=ASK, stream=True)
        reply = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    else:
        reply = client.chat.completions.create(model=MODEL, messages=ASK).choices[0].message.content
    assert reply == "Hello, class!"
    assert len(fake_upstream.chat_requests()) == 2
    assert sorted(LedgerEntry.objects.values_list("completion_tokens", flat=True))[0] == 0


def test_nan_in_a_tools_schema_is_refused_naming_tools(live_asgi: LiveServer, fake_model: ChatModel, key: str) -> None:
    # Python's json reads NaN (JSON has no such number); the SDK will not send it, a script may.
    body = (
        '{"model": "%s", "messages": [{"role": "user", "content": "hi"}], '
        '"tools": [{"type": "function", "function": {"name": "f", "parameters": {"x": NaN}}}]}' % MODEL
    ).encode()
    request = urllib.request.Request(
        live_asgi.url + "/v1/chat/completions", data=body, method="POST", headers={"Authorization": f"Bearer {key}"}
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400 and json.loads(error.value.read())["error"]["param"] == "tools"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/demo/v1/chat/completions"])
def test_json_nested_past_the_parsers_depth_is_a_400_not_a_crash(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = urllib.request.Request(
        live_asgi.url + path,
        data=b"[" * 100_000,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400
    assert error.value.headers["Content-Type"] == "application/json"
    assert "error" in json.loads(error.value.read())
    assert "Traceback" not in caplog.text


def test_a_stream_cut_upstream_ends_in_an_error_event(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(drop_after=2))
    stream = client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    assert LedgerEntry.objects.get().entry_point == "api"


def test_error_messages_follow_accept_language_with_chinese_by_default(
    live_asgi: LiveServer, fake_model: ChatModel, key: str
) -> None:
    # A message params.py already has in both languages (the gateway's own new messages get
    # their zh-hans translations when the catalogue is next updated).
    url, body = live_asgi.url + "/v1/chat/completions", {"model": MODEL, "messages": ASK, "temperature": 9}
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    english = json.loads(http("POST", url, body=body, headers={**auth, "Accept-Language": "en"})[1])["error"]
    default = json.loads(http("POST", url, body=body, headers=auth)[1])["error"]
    assert english["message"].startswith("'temperature' must be a number")
    assert default["param"] == "temperature" and default["message"] != english["message"]


def test_a_client_that_leaves_mid_stream_is_billed_once_for_what_arrived(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(chunks=["word "] * 50, delay=0.1))
    stream = client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, stream=True)
    chunks = iter(stream)
    next(chunks)  # the role chunk, sent before the provider is called
    assert next(chunks).choices[0].delta.content == "word "
    stream.close()
    deadline = time.monotonic() + 10
    while not LedgerEntry.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    entry = LedgerEntry.objects.get()
    assert entry.entry_point == "api" and entry.status == "stopped"
    assert 0 < entry.completion_tokens < 50
    assert len(fake_upstream.chat_requests()) == 1


def test_too_many_requests_a_minute_raise_rate_limit_error_with_retry_after(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People
) -> None:
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, rpm=1)
    client = client_for(live_asgi, key)
    # Three calls in a row: even if a minute boundary falls between two of them (a new
    # window), one of the last two is over the limit.
    served, refused = 0, []
    for _ in range(3):
        try:
            client.chat.completions.create(model=MODEL, messages=ASK)
            served += 1
        except openai.RateLimitError as error:
            refused.append(error)
    assert refused and served in (1, 2)
    assert {error.code for error in refused} == {"rate_limit_exceeded"}
    assert {error.type for error in refused} == {"requests"}
    assert all(int(error.response.headers["Retry-After"]) > 0 for error in refused)
    assert LedgerEntry.objects.count() == served


def test_a_minutes_tokens_used_up_raise_rate_limit_error_of_type_tokens_saying_how_many_are_left(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, people: People
) -> None:
    """As OpenAI answers: the limit that refused it is the error's type, and the message says
    what the request needs and what is left (it said "too many requests" after one)."""
    quota_policy_set(classroom=people.classroom, period=Period.MONTH, tpm=500)
    client = client_for(live_asgi, key).with_options(max_retries=0, default_headers={"Accept-Language": "en"})
    refused = []
    for _ in range(3):
        try:
            client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=300)
        except openai.RateLimitError as error:
            refused.append(error)
    assert refused and {(error.code, error.type) for error in refused} == {("rate_limit_exceeded", "tokens")}
    assert all("limit of 500 tokens" in error.message and "are left" in error.message for error in refused)
    assert all(int(error.response.headers["Retry-After"]) > 0 for error in refused)


def test_sampling_parameters_response_format_and_max_completion_tokens_reach_the_provider(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    client_for(live_asgi, key).chat.completions.create(
        model=MODEL,
        messages=ASK,
        temperature=0.5,
        response_format={"type": "json_object"},
        max_completion_tokens=33,
        user="student-7",
    )
    sent = fake_upstream.chat_requests()[0].body
    assert sent["temperature"] == 0.5 and sent["response_format"] == {"type": "json_object"}
    assert 33 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))
    assert "user" not in sent


def test_a_model_is_retrieved_by_its_id_and_an_unknown_one_is_not_found(
    live_asgi: LiveServer, fake_model: ChatModel, key: str
) -> None:
    client = client_for(live_asgi, key)
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.owned_by == "fakeai" and model.object == "model"
    with pytest.raises(openai.NotFoundError) as error:
        client.models.retrieve("nobody/nothing")
    assert error.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        client_for(live_asgi, "wc-not-a-key").models.retrieve(MODEL)


def test_an_endpoint_this_server_does_not_offer_is_a_json_404_the_sdk_can_show(
    live_asgi: LiveServer, fake_model: ChatModel, key: str
) -> None:
    # Libraries default to these (pydantic-ai's "openai:" models, LlamaIndex's OpenAILike).
    client = client_for(live_asgi, key)
    with pytest.raises(openai.NotFoundError) as responses:
        client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.NotFoundError) as completions:
        client.completions.create(model=MODEL, prompt="hi")

    for raised, path in ((responses.value, "/v1/responses"), (completions.value, "/v1/completions")):
        assert raised.code == "unknown_url" and raised.type == "invalid_request_error"
        assert f"POST {path}" in raised.message and "/v1/chat/completions" in raised.message
        assert "<html" not in raised.message.lower()


def test_a_wrong_method_is_a_json_405(live_asgi: LiveServer) -> None:
    for method, path, allowed in (("GET", "/v1/chat/completions", "POST"), ("POST", "/v1/models", "GET")):
        request = urllib.request.Request(
            f"{live_asgi.url}{path}", method=method, data=b"{}" if method == "POST" else None
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        body = json.loads(refused.value.read())
        assert refused.value.code == 405 and refused.value.headers["Allow"] == allowed
        assert body["error"]["code"] == "method_not_allowed" and f"{method} {path}" in body["error"]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_reply_whose_connection_is_cut_after_it_finished_is_answered_whole(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream, stream: bool
) -> None:
    """The provider sent the whole reply and why it finished, then the connection went
    before [DONE]: the caller gets the reply (it was a 502 without the text it was billed
    for), once."""
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    text = {"choices": [{"index": 0, "delta": {"content": "Hello!"}, "finish_reason": None}]}
    fake_upstream.default = Behaviour(raw_events=[json.dumps(text), json.dumps(finish)], cut_at_end=True)
    client = client_for(live_asgi, key)

    if stream:
        pieces = list(client.chat.completions.create(model=MODEL, messages=ASK, stream=True))
        assert "".join(p.choices[0].delta.content or "" for p in pieces if p.choices) == "Hello!"
        assert [p.choices[0].finish_reason for p in pieces if p.choices][-1] == "stop"
    else:
        completion = client.chat.completions.create(model=MODEL, messages=ASK)
        assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == ("Hello!", "stop")
    assert len(fake_upstream.chat_requests()) == 1
    assert LedgerEntry.objects.get().status == "complete"


def test_a_tool_call_from_a_server_that_ignores_stream_reaches_the_caller(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """The provider answered `stream: true` with one JSON chat.completion calling a tool."""
    fake_upstream.default = Behaviour(
        ignore_stream=True, tool_call={"name": "get_weather", "arguments": '{"city": "Beijing"}'}
    )
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    completion = client_for(live_asgi, key).chat.completions.create(model=MODEL, messages=ASK, tools=tools)

    call = completion.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Beijing"})
    assert completion.choices[0].finish_reason == "tool_calls"


def test_a_caller_that_leaves_while_the_provider_works_on_the_prompt_pays_for_it(
    live_asgi: LiveServer, fake_model: ChatModel, key: str, fake_upstream: FakeUpstream
) -> None:
    """The request reached the provider, which works on the prompt before it answers: a
    caller that leaves then pays the prompt (as the provider bills it). Billed nothing, a
    long prompt and a hang-up were free, the school's provider account paid."""
    fake_upstream.default = Behaviour(headers_delay=1.5)
    client = openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=0, timeout=0.7)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 2000}])
    for _ in range(50):
        if LedgerEntry.objects.exists():
            break
        time.sleep(0.1)
    entry = LedgerEntry.objects.get()
    assert len(fake_upstream.chat_requests()) == 1
    assert entry.status == "stopped" and entry.prompt_tokens > 2000
