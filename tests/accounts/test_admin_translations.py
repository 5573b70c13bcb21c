"""Django admin in zh-hans shows no English that the project can translate: django-axes'
app gets a translated name, and the library strings our catalog translates still exist
upstream under exactly those msgids (else the translation silently stops applying)."""

from __future__ import annotations

from pathlib import Path

import axes
import django
import pytest
from django.apps import apps
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.accounts.third_party_msgids import AXES_MSGIDS, DJANGO_ADMIN_MSGIDS
from tests.conftest import People


def test_axes_msgids_our_catalog_translates_are_still_axes_own() -> None:
    source = "".join((Path(axes.__file__).parent / name).read_text() for name in ("models.py", "admin.py"))
    missing = [msgid for msgid in AXES_MSGIDS if f'_("{msgid}")' not in source and f'"{msgid}"' not in source]
    assert not missing, f"django-axes no longer uses these msgids: {missing}"


def test_django_admin_msgids_our_catalog_translates_are_still_djangos_own() -> None:
    catalog = (
        Path(django.__file__).parent / "contrib" / "admin" / "locale" / "en" / "LC_MESSAGES" / "django.po"
    ).read_text()
    missing = [msgid for msgid in DJANGO_ADMIN_MSGIDS if f'msgid "{msgid}"' not in catalog]
    assert not missing, f"Django admin no longer uses these msgids: {missing}"


def test_the_login_throttling_app_has_a_translatable_name() -> None:
    config = apps.get_app_config("axes")
    with translation.override("en"):
        assert config.name == "axes" and str(config.verbose_name) == "Login attempts"
    with translation.override("zh-hans"):
        assert str(config.verbose_name) == "登录尝试"


@pytest.mark.django_db
def test_admin_index_names_the_axes_app_by_our_name(people: People, client: Client) -> None:
    client.force_login(people.admin)
    page = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Login attempts" in page and ">Axes<" not in page
    assert reverse("admin:axes_accessattempt_changelist") in page


@pytest.mark.django_db
def test_the_admin_is_headed_with_the_sites_name_in_either_language(people: People, client: Client) -> None:
    client.force_login(people.admin)
    english = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    chinese = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "webchat administration" in english and "Django administration" not in english
    assert "webchat 管理后台" in chinese and "Django 管理" not in chinese


def test_a_too_short_password_is_refused_in_chinese_too() -> None:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    catalog = (
        Path(django.__file__).parent / "contrib" / "auth" / "locale" / "en" / "LC_MESSAGES" / "django.po"
    ).read_text()
    assert 'msgid "This password is too short. It must contain at least %d character."' in catalog
    with translation.override("zh-hans"), pytest.raises(ValidationError) as refused:
        validate_password("q9")
    assert refused.value.messages[0] == "密码太短，至少要有 8 个字符。"
