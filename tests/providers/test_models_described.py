"""The model picker's meaning: each offered model with its description, current price and
context size, grouped by provider."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from apps.providers.models import ChatModel, ModelPrice
from apps.providers.selectors import models_described_for, price_cache_forget
from apps.providers.services import class_models_set
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_each_offered_model_has_its_description_price_and_context(
    people: People, fake_model: ChatModel, demo_model: ChatModel
) -> None:
    groups = models_described_for(user=people.student, classroom=people.classroom)

    by_route = {item.route_name: item for group in groups for item in group.models}
    demo = by_route["demo/demo-tutor"]
    with override("en"):
        assert demo.model.description.startswith("Built in, no key needed. Its price is made up (no real money)")
    with override("zh-hans"):
        assert demo.model.description == "内置，不需要密钥。价格是虚构的（不花真钱）：演示一条回复如何计数和计费。"
    fake = by_route["fakeai/fake-model"]
    assert (fake.label, fake.input_per_million, fake.output_per_million, fake.currency) == (
        "Fake model",
        Decimal("2"),
        Decimal("8"),
        "CNY",
    )
    assert (fake.context_window, fake.max_output_tokens, fake.is_free) == (16000, 2048, False)
    # Grouped by provider, in the catalog's order: the demo first.
    assert [group.provider.slug for group in groups] == ["demo", "fakeai"]


def test_only_the_models_the_class_allows_are_described(
    people: People, fake_model: ChatModel, demo_model: ChatModel
) -> None:
    class_models_set(classroom=people.classroom, allowed_models=[fake_model], default_model=None)

    groups = models_described_for(user=people.student, classroom=people.classroom)

    assert [item.route_name for group in groups for item in group.models] == ["fakeai/fake-model"]


def test_the_price_shown_is_the_one_in_force_now(people: People, fake_model: ChatModel) -> None:
    ModelPrice.objects.create(
        model=fake_model,
        input_per_million=Decimal("3"),
        output_per_million=Decimal("9"),
        currency="CNY",
        effective_from=timezone.now() - timedelta(minutes=1),
    )
    ModelPrice.objects.create(
        model=fake_model,
        input_per_million=Decimal("30"),
        output_per_million=Decimal("90"),
        currency="CNY",
        effective_from=timezone.now() + timedelta(days=1),
    )
    price_cache_forget()

    groups = models_described_for(user=people.student, classroom=people.classroom)

    (fake,) = [item for group in groups for item in group.models if item.model == fake_model]
    assert (fake.input_per_million, fake.output_per_million) == (Decimal("3"), Decimal("9"))


def test_describing_does_not_grow_queries_with_models(
    people: People, catalog: None, fake_model: ChatModel, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(6):
        groups = models_described_for(user=people.teacher, classroom=None)
    assert sum(len(group.models) for group in groups) >= 2


def test_the_chat_page_gets_the_described_models(people: People, fake_model: ChatModel) -> None:
    client = Client()
    client.force_login(people.student)

    response = client.get(reverse("home"))

    groups = response.context["models_described"]
    assert "fakeai/fake-model" in [item.route_name for group in groups for item in group.models]
    slugs = [group.provider.slug for group in groups]
    assert len(slugs) == len(set(slugs))  # one group per provider
