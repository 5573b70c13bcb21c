"""Personal API keys: created once, stored as a hash, refused when revoked or expired."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.gateway.models import ApiKey
from apps.gateway.selectors import api_key_user
from apps.gateway.services import api_key_create, api_key_revoke
from webchat.errors import ErrorCode, RequestRefused


def test_a_new_key_is_returned_once_and_stored_only_as_its_hash(people: Any) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    assert key.startswith("wc-") and len(key) >= 3 + 43
    assert row.prefix == key[:11]
    stored = ApiKey.objects.get(pk=row.pk)
    assert key not in {stored.key_hash, stored.prefix, stored.name, str(stored)}
    assert api_key_user(presented=key) == people.student
    assert ApiKey.objects.get(pk=row.pk).last_used_at is not None


@pytest.mark.parametrize("presented", [None, "", "wc-unknown", "sk-something", "wc-" + "x" * 500])
def test_a_missing_or_unknown_key_is_refused(people: Any, presented: str | None) -> None:
    with pytest.raises(RequestRefused) as refused:
        api_key_user(presented=presented)
    assert refused.value.code == ErrorCode.INVALID_API_KEY


def test_a_revoked_key_is_refused_on_the_next_request(people: Any) -> None:
    row, key = api_key_create(user=people.student)
    api_key_revoke(key=row)
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)


def test_an_expired_key_is_refused(people: Any) -> None:
    _, key = api_key_create(user=people.student, expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)


def test_a_key_works_until_it_expires_and_records_its_use_at_most_once_a_minute(people: Any) -> None:
    row, key = api_key_create(user=people.student, expires_at=timezone.now() + timedelta(seconds=30))

    assert api_key_user(presented=key) == people.student
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None
    api_key_user(presented=key)
    row.refresh_from_db()
    assert row.last_used_at == first  # within the minute: not written again
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=1, seconds=1))
    api_key_user(presented=key)
    row.refresh_from_db()
    assert row.last_used_at > first
    ApiKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)


def test_the_key_of_a_deactivated_user_is_refused(people: Any) -> None:
    _, key = api_key_create(user=people.student)
    people.student.is_active = False
    people.student.save(update_fields=["is_active"])
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)


def test_the_command_prints_only_the_key(people: Any) -> None:
    out = StringIO()
    call_command(
        "api_key_create", "--user", people.student.username, "--name", "script", "--expires-days", "7", stdout=out
    )
    key = out.getvalue().strip()
    assert api_key_user(presented=key) == people.student
    row = ApiKey.objects.get(user=people.student)
    assert row.name == "script" and row.expires_at is not None


def test_admin_lists_keys_without_showing_them_and_revokes_through_the_service(people: Any) -> None:
    row, key = api_key_create(user=people.student, name="laptop")
    client = Client()
    client.force_login(people.admin)
    url = reverse("admin:gateway_apikey_changelist")
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert row.prefix in page and key not in page and row.key_hash not in page
    assert key not in client.get(reverse("admin:gateway_apikey_change", args=[row.pk])).content.decode()
    client.post(url, {"action": "revoke", "_selected_action": [row.pk]})
    with pytest.raises(RequestRefused):
        api_key_user(presented=key)
