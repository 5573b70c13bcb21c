"""The chat page offers the models the student can reach now, and the lessons' .env works."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.providers.models import Provider
from apps.providers.services import credential_create
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_only_reachable_models_are_offered(people: People, client: Client) -> None:
    client.force_login(people.student)
    page = client.get(reverse("home")).content.decode()
    assert 'value="demo/demo-tutor"' in page
    assert 'value="deepseek/deepseek-chat"' not in page
    credential_create(
        actor=people.teacher,
        provider=Provider.objects.get(slug="deepseek"),
        scope="class",
        classroom=people.classroom,
        api_key="sk-class-deepseek",
    )
    page = client.get(reverse("home")).content.decode()
    assert 'value="deepseek/deepseek-chat"' in page
    client.force_login(people.other_student)
    assert 'value="deepseek/deepseek-chat"' not in client.get(reverse("home")).content.decode()


def test_openai_settings_from_the_lessons_offer_that_servers_model(
    people: People, client: Client, monkeypatch: Any
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-dotenv")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("MODEL_NAME", "qwen2.5:0.5b")
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "openai/qwen2.5:0.5b" in out.getvalue()
    client.force_login(people.student)
    page = client.get(reverse("home")).content.decode()
    assert 'value="openai/qwen2.5:0.5b"' in page and 'value="demo/demo-tutor"' in page


def test_chat_page_queries_do_not_grow_with_keys_and_providers(
    people: People, client: Client, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(people.student)
    client.get(reverse("home"))  # warm the per-process caches
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("home"))
    for slug in ("deepseek", "moonshot", "glm", "qwen"):
        credential_create(
            actor=people.teacher,
            provider=Provider.objects.get(slug=slug),
            scope="class",
            classroom=people.classroom,
            api_key=f"sk-class-{slug}-key",
        )
    with django_assert_num_queries(len(before.captured_queries)):
        page = client.get(reverse("home")).content.decode()
    assert 'value="qwen/qwen-turbo"' in page and 'value="glm/glm-4-flash"' in page
