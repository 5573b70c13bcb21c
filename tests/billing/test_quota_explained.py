"""A refused question says why in the student's terms (the hold is the question plus the
longest reply allowed), and the meter shows used, held and left."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.billing.selectors import quota_figures, quota_status
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings: Any) -> None:
    settings.LANGUAGE_CODE = "en"


def refusal(people: People, model: ChatModel, **kwargs: Any) -> str:
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, model, **kwargs)
    assert refused.value.code == "quota_exceeded" and refused.value.reset_at is not None
    return str(refused.value.message)


def test_a_refusal_at_269_of_600_explains_the_longest_reply_and_what_is_left(
    people: People, fake_model: ChatModel
) -> None:
    policy_set(people.classroom, period="day", student_token_limit=600)
    settle(take(people.student, people.classroom, fake_model, prompt=200, max_tokens=200), 200, 69)

    message = refusal(people, fake_model, prompt=120, max_tokens=400)

    assert message.startswith(
        "A reply can be up to 400 tokens and this question is about 120; you have 331 tokens left this period (resets at "
    )
    assert "held" not in message and "new conversation" not in message
    assert message.endswith("Details: /usage/")


def test_a_refusal_counts_what_running_replies_hold(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    take(people.student, people.classroom, fake_model, prompt=300, max_tokens=500)  # still being written

    message = refusal(people, fake_model, prompt=100, max_tokens=500)

    assert "you have 200 tokens left" in message
    assert "800 of them are held by replies still being written" in message


def test_a_conversation_longer_than_what_is_left_is_told_to_start_a_new_one(
    people: People, fake_model: ChatModel
) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    settle(take(people.student, people.classroom, fake_model, prompt=500, max_tokens=400), 500, 400)

    message = refusal(people, fake_model, prompt=150, max_tokens=100)

    assert "you have 100 tokens left" in message and "a new conversation starts smaller" in message


def test_a_used_up_quota_says_so_and_not_that_the_conversation_is_too_long(
    people: People, fake_model: ChatModel
) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    settle(take(people.student, people.classroom, fake_model, prompt=500, max_tokens=500), 500, 500)

    message = refusal(people, fake_model, prompt=10, max_tokens=100)

    assert "you have 0 tokens left" in message and "new conversation" not in message


def test_an_api_refusal_says_which_max_tokens_fits_and_where_the_usage_page_is(
    people: People, fake_model: ChatModel
) -> None:
    """Over the API the caller picks max_tokens: the refusal says what would fit, over every
    budget (here the class pool is the tighter one), and never speaks of conversations."""
    policy_set(people.classroom, student_token_limit=1_000, class_token_pool=900)
    settle(take(people.student, people.classroom, fake_model, prompt=300, max_tokens=400), 300, 400)

    message = refusal(people, fake_model, prompt=9, max_tokens=1024, entry_point="api")

    assert "you have 300 tokens left" in message
    assert "A smaller max_tokens (up to 191) fits now." in message
    assert "conversation" not in message
    assert message.endswith("Details: your usage page on this site (/usage/).")
    take(people.student, people.classroom, fake_model, prompt=9, max_tokens=191, entry_point="api")  # it does


def test_an_api_refusal_whose_messages_alone_are_too_long_says_so(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    settle(take(people.student, people.classroom, fake_model, prompt=500, max_tokens=400), 500, 400)

    message = refusal(people, fake_model, prompt=150, max_tokens=100, entry_point="api")

    assert "These messages alone are longer than what is left." in message and "max_tokens (up to" not in message


def test_an_api_refusal_under_a_money_limit_says_which_max_tokens_fits(people: People, fake_model: ChatModel) -> None:
    # 100 in + 100 out at 2/8 CNY per million: 0.0002 for the question, 0.0008 for the reply.
    policy_set(people.classroom, student_cost_limit=Decimal("0.0015"))
    settle(take(people.student, people.classroom, fake_model), 100, 100)

    message = refusal(people, fake_model, entry_point="api")

    # 0.0005 left, 0.0002 of it for the question: 0.0003 buys 37 tokens at 8 per million.
    assert "A smaller max_tokens (up to 37) fits now." in message
    take(people.student, people.classroom, fake_model, max_tokens=37, entry_point="api")


def test_a_money_limit_refusal_is_in_money(people: People, fake_model: ChatModel) -> None:
    # 100 in + 100 out at 2/8 CNY per million: 0.0002 for the question, 0.0008 for the reply.
    policy_set(people.classroom, student_cost_limit=Decimal("0.0015"))
    settle(take(people.student, people.classroom, fake_model), 100, 100)

    message = refusal(people, fake_model)

    assert "A reply can cost up to 0.0008 CNY and this question about 0.0002 CNY" in message
    assert "you have 0.0005 CNY left this period" in message


def test_a_class_pool_refusal_names_the_pool(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, class_token_pool=500)
    take(people.classmate, people.classroom, fake_model, prompt=100, max_tokens=250)

    message = refusal(people, fake_model, prompt=100, max_tokens=100)

    assert "your class's shared pool has 150 tokens left" in message


def test_the_meter_status_splits_used_held_and_left(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    settle(take(people.student, people.classroom, fake_model), 100, 150)
    take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100)

    status = quota_status(user=people.student, classroom=people.classroom)

    assert (status.tokens_used, status.tokens_held, status.tokens_left) == (250, 200, 550)
    assert (status.percent_settled, status.percent_used) == (25, 45)
    figures = quota_figures(status)
    assert (figures["tokens_held"], figures["tokens_left"], figures["percent_settled"]) == (200, 550, 25)


def test_the_meter_on_the_chat_page_shows_held_and_left(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100)
    client = Client()
    client.force_login(people.student)

    page = client.get(reverse("home")).content.decode()

    assert 'id="quota-text">0 of 1000 tokens used' in page
    assert "200 tokens held by replies being written" in page and "800 tokens left" in page
    assert 'id="quota-fill" width="20"' in page and 'id="quota-fill-used" width="0"' in page
    assert "js/quota_meter.js" in page


def test_the_meter_refresh_returns_the_students_figures(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100)
    client = Client()
    client.force_login(people.student)

    response = client.get(reverse("my-quota"))

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    figures = json.loads(response.content)
    assert (figures["tokens_used"], figures["tokens_held"], figures["tokens_left"]) == (0, 200, 800)
    assert client.post(reverse("my-quota")).status_code == 405
    assert Client().get(reverse("my-quota")).status_code == 302  # signed out: to the login page
