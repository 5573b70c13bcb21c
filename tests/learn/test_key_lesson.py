"""The key lesson on /api-keys/: what a key is, why it is secret, what to do when it leaks,
with the revoke and create controls on the same page, in zh-hans and en."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.gateway.services import api_key_create
from tests.conftest import People

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("zh-hans", ["什么是 API 密钥", "泄露了怎么办", "无需重新注册账号", ".gitignore"]),
        ("en", ["What is an API key", "What if it leaks", "You do not need a new account", ".gitignore"]),
    ],
)
def test_the_keys_page_teaches_what_a_key_is_in_each_language(people: People, language: str, words: list[str]) -> None:
    client = Client()
    client.force_login(people.student)
    html = client.get(reverse("api-keys"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    lesson = html[html.index('id="key-lesson"') : html.index("</details>", html.index('id="key-lesson"'))]
    for word in words:
        assert word in lesson
    # The buttons point at the page's own revoke list and create form.
    assert 'href="#api-keys"' in lesson and 'href="#api-key-form"' in lesson
    assert 'id="api-keys"' in html and 'id="api-key-form"' in html


def test_the_lesson_is_open_until_the_student_has_a_key(people: People) -> None:
    client = Client()
    client.force_login(people.student)
    assert 'id="key-lesson" open' in client.get(reverse("api-keys")).content.decode()
    api_key_create(user=people.student, name="laptop")
    assert 'id="key-lesson" open' not in client.get(reverse("api-keys")).content.decode()
