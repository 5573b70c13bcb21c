"""Every user-facing string ships in zh-hans (English is the source language)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


def test_zh_hans_catalog_has_no_untranslated_or_fuzzy_strings() -> None:
    po = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)], capture_output=True, text=True, check=True
    )
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "expected"), [("zh-hans", "登录"), ("en", "Log in")])
def test_login_page_in_each_language(client: Client, language: str, expected: str) -> None:
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert f"<h1>{expected}</h1>" in page


@pytest.mark.django_db
def test_default_language_is_zh_hans_when_the_browser_says_nothing_we_speak(client: Client) -> None:
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "<h1>登录</h1>" in page
