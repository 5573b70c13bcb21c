"""POST /learn/tokenizer/count: the tokens tiktoken gives, their cost, and the refusals
(too long, logged out, too often, no CSRF token)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.billing.models import ExchangeRate
from apps.learn import services
from apps.learn.tokenizer import TEXT_MAX_CHARS
from apps.providers.tokens import encoding_get
from tests.conftest import People

pytestmark = pytest.mark.django_db

SAMPLES = {
    "en": "Tokens are pieces of text. Hello, world!",
    "zh": "你好，世界！大语言模型按 token 计费：输入加输出。",
    "emoji": "I 🙂 emoji 👩‍👩‍👧‍👦 and 🇨🇳 flags; 龘 is rare.",
}


def post(client: Client, body: Any) -> Any:
    return client.post(reverse("learn-tokenizer-count"), json.dumps(body), content_type="application/json")


@pytest.fixture
def student_client(people: People, catalog: None) -> Client:
    client = Client()
    client.force_login(people.student)
    return client


def test_a_body_over_the_sites_upload_limit_is_refused_in_json_as_too_long(
    student_client: Client, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Not Django's HTML error page (and an ERROR in the log) for a script's JSON call."""
    text = "a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)

    response = post(student_client, {"text": text, "model": "openai/gpt-4o-mini"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_too_long"
    assert response.json()["error"]["max_chars"] == TEXT_MAX_CHARS
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize(
    ("model", "encoding", "exact"),
    [("openai/gpt-4o-mini", "o200k_base", True), ("deepseek/deepseek-chat", "o200k_base", False)],
)
def test_ids_and_count_equal_tiktoken_for_the_same_encoding(
    student_client: Client, sample: str, model: str, encoding: str, exact: bool
) -> None:
    text = SAMPLES[sample]
    response = post(student_client, {"text": text, "model": model})
    assert response.status_code == 200
    body = response.json()
    expected = encoding_get(encoding).encode(text, disallowed_special=())
    assert body["encoding"] == encoding and body["exact"] is exact
    assert [token["id"] for token in body["tokens"]] == expected
    assert body["count"] == len(expected)
    assert body["characters"] == len(text)


def test_tokens_that_split_a_character_are_marked_and_join_to_it(student_client: Client) -> None:
    body = post(student_client, {"text": "👩‍👩‍👧‍👦龘", "model": "openai/gpt-4o-mini"}).json()
    partial = [token for token in body["tokens"] if token.get("partial")]
    assert partial, "an emoji family splits over tokens in o200k_base"
    encoding = encoding_get("o200k_base")
    raw = b"".join(encoding.decode_single_token_bytes(token["id"]) for token in body["tokens"])
    assert raw.decode() == "👩‍👩‍👧‍👦龘"
    assert all(token["joined"] and token["joined"] in "👩‍👩‍👧‍👦龘" for token in partial)
    assert any("\\x" in token["text"] for token in partial)  # a stray byte is shown as \xNN


def test_costs_in_the_models_currency_and_converted(student_client: Client) -> None:
    ExchangeRate.objects.all().delete()
    ExchangeRate.objects.create(
        from_currency="USD", to_currency="CNY", rate=Decimal("7.2"), effective_from=datetime(2020, 1, 1, tzinfo=UTC)
    )
    text = "hello " * 1000  # 1000 tokens in o200k_base
    body = post(student_client, {"text": text, "model": "openai/gpt-4o-mini"}).json()
    count = Decimal(body["count"])
    assert body["currency"] == "USD"
    assert Decimal(body["input_cost"]) == count * Decimal("0.15") / 1_000_000
    assert Decimal(body["output_cost"]) == count * Decimal("0.60") / 1_000_000
    assert Decimal(body["costs"]["USD"]["input"]) == Decimal(body["input_cost"])
    assert Decimal(body["costs"]["CNY"]["output"]) == (count * Decimal("0.60") * Decimal("7.2") / 1_000_000).quantize(
        Decimal("0.00000001")
    )
    assert body["price"]["effective_from"] == "2025-01-01"


def test_without_an_exchange_rate_only_the_models_currency_is_given(student_client: Client) -> None:
    ExchangeRate.objects.all().delete()  # the shipped default rate included
    body = post(student_client, {"text": "你好", "model": "deepseek/deepseek-chat"}).json()
    assert body["currency"] == "CNY" and set(body["costs"]) == {"CNY"}


def test_text_over_the_limit_is_refused_with_400(student_client: Client) -> None:
    response = post(student_client, {"text": "a" * (TEXT_MAX_CHARS + 1), "model": "openai/gpt-4o-mini"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_too_long"
    assert post(student_client, {"text": "a" * TEXT_MAX_CHARS, "model": "openai/gpt-4o-mini"}).status_code == 200


@pytest.mark.parametrize(
    "body", [{"text": "hi"}, {"text": 3, "model": "openai/gpt-4o-mini"}, {"text": "hi", "model": "nope/none"}, []]
)
def test_bad_input_is_refused_with_400(student_client: Client, body: Any) -> None:
    assert post(student_client, body).status_code == 400


def test_a_body_that_is_not_json_is_refused_with_400(student_client: Client) -> None:
    response = student_client.post(reverse("learn-tokenizer-count"), "text=hi", content_type="application/json")
    assert response.status_code == 400


def test_someone_logged_out_is_refused(people: People, catalog: None) -> None:
    response = post(Client(), {"text": "hi", "model": "openai/gpt-4o-mini"})
    assert response.status_code == 403


def test_get_is_not_allowed(student_client: Client) -> None:
    assert student_client.get(reverse("learn-tokenizer-count")).status_code == 405


def test_a_post_without_the_csrf_token_is_refused(people: People, catalog: None) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.student)
    assert post(client, {"text": "hi", "model": "openai/gpt-4o-mini"}).status_code == 403
    page = client.get(reverse("learn-tokenizer"))
    token = page.context["csrf_token"]
    response = client.post(
        reverse("learn-tokenizer-count"),
        json.dumps({"text": "hi", "model": "openai/gpt-4o-mini"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=str(token),
    )
    assert response.status_code == 200


def test_too_many_calls_a_minute_get_429_with_retry_after(
    people: People, student_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(services, "TOKENIZER_CALLS_PER_MINUTE", 3)
    for _ in range(3):
        assert post(student_client, {"text": "hi", "model": "openai/gpt-4o-mini"}).status_code == 200
    response = post(student_client, {"text": "hi", "model": "openai/gpt-4o-mini"})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["code"] == "rate_limited"
    # Another user has their own allowance.
    other = Client()
    other.force_login(people.classmate)
    assert post(other, {"text": "hi", "model": "openai/gpt-4o-mini"}).status_code == 200
    cache.clear()


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize(("model_name", "encoding"), [("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base")])
def test_the_split_gives_tiktokens_ids_and_bytes_in_each_encoding(sample: str, model_name: str, encoding: str) -> None:
    from apps.learn.tokenizer import text_tokens_split

    text = SAMPLES[sample]
    split = text_tokens_split(text=text, model_name=model_name)
    tiktoken_encoding = encoding_get(encoding)
    assert split.encoding == encoding and split.exact
    assert [piece["id"] for piece in split.pieces] == tiktoken_encoding.encode(text)
    # Whole tokens read as their text; together the pieces are the text.
    assert all(
        piece["text"] == tiktoken_encoding.decode([piece["id"]]) for piece in split.pieces if not piece.get("partial")
    )
    assert tiktoken_encoding.decode([piece["id"] for piece in split.pieces]) == text
