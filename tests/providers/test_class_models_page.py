"""The teacher's allowed-models page: every model with its name, provider, price, context
and whether the class has a key for it; a ticked model without a key is called out."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apps.providers.models import ChatModel
from apps.providers.selectors import classroom_models_described
from apps.providers.services import credential_create
from tests.conftest import People

pytestmark = pytest.mark.django_db
WARNING = "No key for this provider: students won't see it until a key is added."


@pytest.fixture
def teacher(people: People) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(people.teacher)
    return client


def key_sources(people: People) -> dict[str, str]:
    return {group.provider.slug: group.key_source for group in classroom_models_described(classroom=people.classroom)}


def test_each_model_shows_its_name_provider_price_and_context(
    people: People, teacher: Client, fake_model: ChatModel, keyed_model: ChatModel
) -> None:
    page = teacher.get(reverse("class-models", args=[people.classroom.pk])).content.decode()

    fake = page[page.index('data-provider="fakeai"') :]
    fake = fake[: fake.index("</fieldset>")]
    assert "Fake AI" in fake and "No key needed" in fake
    assert "<strong>Fake model</strong>" in fake and "fakeai/fake-model" in fake
    assert "in 2 · out 8 CNY per million tokens" in fake and "context 16,000 tokens" in fake
    keyed = page[page.index('data-provider="keyedai"') :]
    assert "No key yet" in keyed[: keyed.index("</legend>")]
    assert WARNING in keyed[: keyed.index("</fieldset>")]  # shown by CSS only while ticked
    assert WARNING not in fake
    assert re.search(r"<option value=\"%d\">Keyed AI · Fake model</option>" % keyed_model.pk, page)


def test_the_key_a_class_would_use_class_then_site_then_environment(
    people: People, keyed_model: ChatModel, monkeypatch: Any
) -> None:
    assert key_sources(people)["keyedai"] == ""
    monkeypatch.setenv("KEYEDAI_API_KEY", "sk-from-the-environment")
    assert key_sources(people)["keyedai"] == "environment"
    credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key="sk-site-key-0001")
    assert key_sources(people)["keyedai"] == "site"
    credential_create(
        actor=people.other_teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.other_classroom,
        api_key="sk-another-class-0002",
    )
    assert key_sources(people)["keyedai"] == "site"  # another class's key is not this class's
    credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key="sk-class-key-0003",
    )
    assert key_sources(people)["keyedai"] == "class"


def test_a_student_key_does_not_count_for_the_class(people: People, keyed_model: ChatModel) -> None:
    credential_create(actor=people.teacher, provider=keyed_model.provider, scope="user", api_key="sk-own-key-0004")
    assert key_sources(people)["keyedai"] == ""


def test_saving_a_ticked_model_without_a_key_warns_that_students_wont_see_it(
    people: People, teacher: Client, fake_model: ChatModel, keyed_model: ChatModel
) -> None:
    url = reverse("class-models", args=[people.classroom.pk])

    response = teacher.post(url, {"allowed_models": [fake_model.pk, keyed_model.pk]}, follow=True)

    page = response.content.decode()
    assert "The class&#x27;s models are saved." in page
    assert "Students won&#x27;t see Keyed AI · Fake model until a key is added for its provider." in page
    assert re.search(rf'name="allowed_models" value="{keyed_model.pk}"[^>]*checked', page)


def test_saving_models_that_all_have_keys_gives_no_warning(
    people: People, teacher: Client, fake_model: ChatModel, keyed_model: ChatModel
) -> None:
    url = reverse("class-models", args=[people.classroom.pk])

    page = teacher.post(url, {"allowed_models": [fake_model.pk]}, follow=True).content.decode()

    assert "until a key is added for its provider" not in page


def test_the_page_does_not_grow_queries_with_models(
    people: People, teacher: Client, catalog: None, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(14):
        assert teacher.get(reverse("class-models", args=[people.classroom.pk])).status_code == 200
