"""Calls survive upstream faults: retries before the first chunk, failover, timeouts,
rejected keys, ERNIE's token exchange; and parameters pass through."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.billing.models import Hold, Period
from apps.billing.services import quota_policy_set
from apps.conversations.models import Message
from apps.providers.models import ChatModel, Credential, ModelFallback, ModelPrice, Provider
from apps.providers.selectors import price_cache_forget
from apps.providers.services import class_models_set, credential_create
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)


async def turn(user: Any, model: str = "keyedai/keyed-model", **extra: Any) -> list[dict[str, Any]]:
    ws = await ws_connect(user)
    await ws.connect()
    try:
        return await ws_turn(ws, model=model, content="hello", **extra)
    finally:
        await ws.disconnect()


@pytest.fixture
def class_key(people: People, keyed_model: ChatModel) -> Credential:
    return credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key="sk-class-key-1234",
    )


async def test_429_is_retried_after_the_providers_retry_after(
    people: People, class_key: Credential, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.push(Behaviour(status=429, retry_after="1"))
    started = time.monotonic()

    frames = await turn(people.student)

    assert frames[-1]["status"] == "complete"
    assert len(fake_upstream.chat_requests()) == 2
    assert time.monotonic() - started >= 1.0


async def test_retry_after_is_capped(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_RETRY_AFTER_CAP = 0.2
    fake_upstream.push(Behaviour(status=429, retry_after="3600"))
    started = time.monotonic()
    frames = await turn(people.student)
    assert frames[-1]["status"] == "complete"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("retry_after", ["nan", "-inf", "Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
async def test_a_retry_after_that_is_no_number_of_seconds_falls_back_to_our_backoff(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, retry_after: str
) -> None:
    """A sleep of NaN seconds never ends: a provider (or a URL a teacher typed) sending
    "Retry-After: nan" held the reply until the total timeout."""
    fake_upstream.push(Behaviour(status=429, retry_after=retry_after))
    started = time.monotonic()
    frames = await turn(people.student)
    assert frames[-1]["status"] == "complete"
    assert len(fake_upstream.chat_requests()) == 2
    assert time.monotonic() - started < 5


async def test_rate_limit_that_never_clears_ends_in_a_labelled_failure(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_MAX_ATTEMPTS = 3
    fake_upstream.default = Behaviour(status=429, retry_after="0")
    frames = await turn(people.student)
    assert frames[-1]["code"] == "upstream_rate_limited"
    assert len(fake_upstream.chat_requests()) == 3
    reply = await Message.objects.aget(pk=frames[0]["message"])
    assert (reply.status, reply.error_code) == ("failed", "upstream_rate_limited")


async def test_500_then_failover_to_another_provider_and_the_route_is_recorded(
    people: People,
    class_key: Credential,
    keyed_model: ChatModel,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    settings.LLM_MAX_ATTEMPTS = 1
    await ModelFallback.objects.acreate(model=keyed_model, fallback=fake_model, position=1)
    fake_upstream.push(Behaviour(status=500))

    frames = await turn(people.student)

    assert frames[-1]["status"] == "complete"
    assert frames[-1]["model"] == "fakeai/fake-model"
    requests = fake_upstream.chat_requests()
    assert [r.body["model"] for r in requests] == ["keyed-model", "fake-model"]
    reply = await Message.objects.aget(pk=frames[-1]["message"])
    assert reply.route_name == "fakeai/fake-model"


async def test_no_failover_to_a_model_the_class_does_not_allow(
    people: People,
    class_key: Credential,
    keyed_model: ChatModel,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    """A student can make the first route fail on purpose (a schema or a text the provider
    refuses): its fallbacks are the class's to allow like any model the student picks."""
    settings.LLM_MAX_ATTEMPTS = 1
    await ModelFallback.objects.acreate(model=keyed_model, fallback=fake_model, position=1)
    await sync_to_async(class_models_set)(classroom=people.classroom, allowed_models=[keyed_model], default_model=None)
    fake_upstream.push(Behaviour(status=500))

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "upstream_error"
    assert [r.body["model"] for r in fake_upstream.chat_requests()] == ["keyed-model"]
    # A student of a class that allows it still fails over (the same request, another class).
    await sync_to_async(class_models_set)(
        classroom=people.classroom, allowed_models=[keyed_model, fake_model], default_model=None
    )
    fake_upstream.push(Behaviour(status=500))
    frames = await turn(people.student)
    assert frames[-1]["status"] == "complete" and frames[-1]["model"] == "fakeai/fake-model"


async def test_a_fallback_that_answers_for_a_model_with_no_key_is_held_at_its_own_price(
    people: People, keyed_model: ChatModel, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    """The requested model has no key, so its fallback is the first route: the money held is
    the fallback's, which answers (a 0.05 CNY quota was billed 10.8 CNY at 216 times the
    requested model's price)."""
    await ModelFallback.objects.acreate(model=keyed_model, fallback=fake_model, position=1)
    await ModelPrice.objects.acreate(
        model=fake_model,
        input_per_million=Decimal("500"),
        output_per_million=Decimal("2000"),
        currency="CNY",
        effective_from=timezone.now() - timedelta(days=1),
    )
    price_cache_forget()
    await sync_to_async(quota_policy_set)(
        classroom=people.classroom, period=Period.MONTH, student_cost_limit=Decimal("0.05")
    )

    frames = await turn(people.student)

    assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "quota_exceeded"
    assert not fake_upstream.chat_requests()


async def test_failover_to_another_credential(
    people: People, class_key: Credential, keyed_model: ChatModel, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_MAX_ATTEMPTS = 1
    spare = await sync_to_async(credential_create)(
        actor=people.admin, provider=keyed_model.provider, scope="site", api_key="sk-spare-key-5678"
    )
    await ModelFallback.objects.acreate(model=keyed_model, fallback=keyed_model, credential=spare, position=1)
    fake_upstream.push(Behaviour(status=503))

    frames = await turn(people.student)

    assert frames[-1]["status"] == "complete"
    bearers = [r.headers["authorization"] for r in fake_upstream.chat_requests()]
    assert bearers == ["Bearer sk-class-key-1234", "Bearer sk-spare-key-5678"]
    reply = await Message.objects.aget(pk=frames[-1]["message"])
    assert (reply.credential_id, reply.credential_scope) == (spare.pk, "site")


async def test_first_chunk_timeout_is_retried_then_reported(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, settings: Any
) -> None:
    # 0.6 s an attempt: room to connect and send on a loaded machine (make test runs three
    # suites on two cores; at 0.3 s a second attempt once timed out before it was sent).
    settings.LLM_FIRST_CHUNK_TIMEOUT = 0.6
    settings.LLM_MAX_ATTEMPTS = 2
    fake_upstream.default = Behaviour(headers_delay=5)

    started = time.monotonic()
    frames = await turn(people.student)

    assert frames[-1]["code"] == "upstream_timeout"
    assert len(fake_upstream.chat_requests()) == 2
    # Two timed-out attempts and a backoff; waiting for the upstream would take 5 s or more
    # (with room for a loaded machine: it once took 3.06 s).
    assert time.monotonic() - started < 4.5


async def test_the_total_timeout_bounds_the_whole_call_with_its_retries_and_routes(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, settings: Any
) -> None:
    """A model that "thinks" (empty chunks keep the idle timer alive, no text) until the total
    timeout: a retry used to start a new total, so a turn could run three times as long as
    its hold was sized for (HOLD_EXPIRY_SECONDS) and be expired mid-stream."""
    settings.LLM_TOTAL_TIMEOUT = 1.0
    settings.LLM_FIRST_CHUNK_TIMEOUT = settings.LLM_IDLE_TIMEOUT = 0.5
    settings.LLM_MAX_ATTEMPTS = 3
    fake_upstream.default = Behaviour(chunks=[""] * 40, delay=0.1)

    started = time.monotonic()
    frames = await turn(people.student)

    assert frames[-1]["code"] == "upstream_timeout"
    assert len(fake_upstream.chat_requests()) == 1
    assert time.monotonic() - started < 1.8


async def test_idle_gap_between_chunks_ends_the_reply_as_interrupted(
    people: People, class_key: Credential, fake_upstream: FakeUpstream, settings: Any
) -> None:
    settings.LLM_IDLE_TIMEOUT = 0.3
    fake_upstream.default = Behaviour(chunks=["first ", "second"], stall_before=1, stall=2.0)

    frames = await turn(people.student)

    done = frames[-1]
    assert (done["status"], done["error_code"]) == ("interrupted", "upstream_timeout")
    reply = await Message.objects.aget(pk=done["message"])
    assert reply.content == "first "
    assert len(fake_upstream.chat_requests()) == 1  # text had reached the student: no retry


async def test_rejected_class_key_tells_the_student_and_marks_the_key_failing(
    people: People,
    class_key: Credential,
    fake_upstream: FakeUpstream,
) -> None:
    fake_upstream.accepted_bearers = {"some-other-key"}

    frames = await turn(people.student)

    assert frames[-1]["code"] == "upstream_auth_failed"
    assert "teacher" in frames[-1]["message"]
    assert len(fake_upstream.chat_requests()) == 1  # a rejected key is not retried
    row = await Credential.objects.aget(pk=class_key.pk)
    assert row.status == Credential.Status.FAILING
    # A failing key is not used again until fixed: the next request finds no key.
    again = await turn(people.student)
    assert again[-1]["code"] == "no_credential"


async def test_site_key_from_the_environment_is_used_last(
    people: People, keyed_model: ChatModel, fake_upstream: FakeUpstream, monkeypatch: Any
) -> None:
    monkeypatch.setenv("KEYEDAI_API_KEY", "sk-from-env-0000")
    frames = await turn(people.student)
    assert frames[-1]["status"] == "complete"
    assert fake_upstream.chat_requests()[0].headers["authorization"] == "Bearer sk-from-env-0000"
    reply = await Message.objects.aget(pk=frames[-1]["message"])
    assert (reply.credential_id, reply.credential_scope) == (None, "site")


async def test_sampling_parameters_and_json_schema_pass_through(
    people: People, class_key: Credential, fake_upstream: FakeUpstream
) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
        },
    }
    frames = await turn(people.student, params={"temperature": 0.2, "top_p": 0.9, "seed": 7, "response_format": schema})
    assert frames[-1]["status"] == "complete"
    body = fake_upstream.chat_requests()[0].body
    assert (body["temperature"], body["top_p"], body["seed"]) == (0.2, 0.9, 7)
    assert body["response_format"] == schema


async def test_unknown_parameters_are_refused(
    people: People, class_key: Credential, fake_upstream: FakeUpstream
) -> None:
    frames = await turn(people.student, params={"api_key": "sneaky"})
    assert frames[-1]["code"] == "bad_request"
    assert fake_upstream.chat_requests() == []


@pytest.fixture
def ernie(db: Any, fake_upstream: FakeUpstream, settings: Any) -> ChatModel:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # class keys reach the fake (keyed_model)
    provider = Provider.objects.get(slug="ernie") if Provider.objects.filter(slug="ernie").exists() else None
    if provider is None:
        provider = Provider.objects.create(
            slug="ernie", name_en="Baidu ERNIE", name_zh="百度-文心一言", base_url="", auth_style="ernie"
        )
    provider.base_url = fake_upstream.base_url
    provider.token_url = fake_upstream.token_url
    provider.save()
    model, _ = ChatModel.objects.get_or_create(provider=provider, name="ernie-3.5-8k")
    fake_upstream.token_credentials = ("ernie-api-key-AK", "ernie-secret-key-SK")
    return model


async def test_ernie_exchanges_api_and_secret_key_for_a_cached_token(
    people: People, ernie: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(credential_create)(
        actor=people.teacher,
        provider=ernie.provider,
        scope="class",
        classroom=people.classroom,
        api_key="ernie-api-key-AK",
        secret_key="ernie-secret-key-SK",
    )
    fake_upstream.accepted_bearers = {"access-token-1"}

    first = await turn(people.student, model="ernie/ernie-3.5-8k")
    second = await turn(people.student, model="ernie/ernie-3.5-8k")

    assert first[-1]["status"] == second[-1]["status"] == "complete"
    assert len(fake_upstream.token_requests()) == 1  # cached between requests
    assert {r.headers["authorization"] for r in fake_upstream.chat_requests()} == {"Bearer access-token-1"}


async def test_ernie_refreshes_the_token_once_on_401(
    people: People, ernie: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(credential_create)(
        actor=people.teacher,
        provider=ernie.provider,
        scope="class",
        classroom=people.classroom,
        api_key="ernie-api-key-AK",
        secret_key="ernie-secret-key-SK",
    )
    fake_upstream.accepted_bearers = {"access-token-1"}
    assert (await turn(people.student, model="ernie/ernie-3.5-8k"))[-1]["status"] == "complete"
    fake_upstream.accepted_bearers = {"access-token-2"}  # the provider revoked token 1

    frames = await turn(people.student, model="ernie/ernie-3.5-8k")

    assert frames[-1]["status"] == "complete"
    assert fake_upstream.issued_tokens == ["access-token-1", "access-token-2"]


async def test_ernie_with_wrong_secret_is_rejected_clearly(
    people: People, ernie: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(credential_create)(
        actor=people.teacher,
        provider=ernie.provider,
        scope="class",
        classroom=people.classroom,
        api_key="ernie-api-key-AK",
        secret_key="wrong-secret",
    )
    frames = await turn(people.student, model="ernie/ernie-3.5-8k")
    assert frames[-1]["code"] == "upstream_auth_failed"
    assert fake_upstream.chat_requests() == []


async def test_ernie_single_bearer_key_for_the_openai_compatible_endpoint(
    people: People, ernie: ChatModel, fake_upstream: FakeUpstream
) -> None:
    await sync_to_async(credential_create)(
        actor=people.teacher,
        provider=ernie.provider,
        scope="class",
        classroom=people.classroom,
        api_key="bce-v3/ALTAK-single/bearer",
    )
    frames = await turn(people.student, model="ernie/ernie-3.5-8k")
    assert frames[-1]["status"] == "complete"
    assert fake_upstream.token_requests() == []
    assert fake_upstream.chat_requests()[0].headers["authorization"] == "Bearer bce-v3/ALTAK-single/bearer"


async def test_openai_base_url_and_key_from_the_environment_serve_that_server(
    people: People, catalog: None, fake_upstream: FakeUpstream, monkeypatch: Any
) -> None:
    from apps.providers.services import catalog_env_model_ensure

    monkeypatch.setenv("OPENAI_API_KEY", "sk-lesson-env-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_upstream.base_url)
    monkeypatch.setenv("MODEL_NAME", "llama3.2:1b")
    await sync_to_async(catalog_env_model_ensure)()

    frames = await turn(people.student, model="openai/llama3.2:1b")

    assert frames[-1]["status"] == "complete"
    request = fake_upstream.chat_requests()[0]
    assert request.body["model"] == "llama3.2:1b"
    assert request.headers["authorization"] == "Bearer sk-lesson-env-key"


async def test_a_thinking_fallback_is_held_and_asked_for_all_it_may_write_and_no_route_past_its_own_limit(
    people: People,
    class_key: Credential,
    keyed_model: ChatModel,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    """The requested model fails and a reasoning model answers in its place: held and asked
    for the site's default 1,024 tokens, its thinking was cut before its answer. Each route
    is asked for no more than its own model writes."""
    settings.LLM_MAX_ATTEMPTS = 1
    keyed_model.max_output_tokens = 1500
    await keyed_model.asave(update_fields=["max_output_tokens"])
    fake_model.thinks = True
    await fake_model.asave(update_fields=["thinks"])
    await ModelFallback.objects.acreate(model=keyed_model, fallback=fake_model, position=1)
    thought = json.dumps({"choices": [{"index": 0, "delta": {"reasoning_content": "Let me think. " * 40}}]})
    answer = json.dumps({"choices": [{"index": 0, "delta": {"content": "Because."}, "finish_reason": None}]})
    done = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    fake_upstream.push(Behaviour(status=500))
    fake_upstream.push(Behaviour(raw_events=[thought] * 10 + [answer, done]))  # about 1,600 tokens of thinking

    frames = await turn(people.student)

    assert frames[-1]["status"] == "complete" and frames[-1]["model"] == "fakeai/fake-model"
    asked = [r.body["max_tokens"] for r in fake_upstream.chat_requests()]
    assert asked == [1500, 2048]  # each its own model's most; the thinking one's allowance
    hold = await Hold.objects.aget()
    assert hold.tokens - hold.prompt_tokens == 2048
