"""Every user-facing string ships in zh-hans (English is the source language)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
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


@pytest.mark.backend_free
def test_every_string_marked_for_translation_is_in_the_zh_hans_catalog(tmp_path: Path) -> None:
    """What makemessages finds in the code and templates, translated: a string added by hand
    to the catalog passes the check above even when the code's call is one makemessages
    cannot see (a gettext call inside an f-string), and then shows in English."""
    for part in ("apps", "templates", "webchat", "locale", "manage.py"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy(source, tmp_path / part)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "zh_Hans", "--no-obsolete", "-v0"],
        cwd=tmp_path,
        env={**os.environ, "DEBUG": "True"},
        check=True,
    )
    result = subprocess.run(
        ["msgattrib", "--untranslated", "--no-location", str(tmp_path / "locale/zh_Hans/LC_MESSAGES/django.po")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "msgid" not in result.stdout, result.stdout


def test_no_translation_call_hides_inside_an_f_string() -> None:
    """makemessages (xgettext) does not look inside an f-string's braces: such a string is
    never extracted, so never translated (the code comments on the provider pages were
    English on the zh-hans page)."""
    hidden = re.compile(r"\{\s*(_|gettext|gettext_lazy|ngettext|pgettext)\(")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for part in ("apps", "webchat")
        for path in (ROOT / part).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if hidden.search(line)
    ]
    assert not found, found
