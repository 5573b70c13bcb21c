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


def _in_use(key: str) -> bool:
    try:
        api_key_user(presented=key)
    except RequestRefused:
        return False
    return True


def test_a_password_a_teacher_resets_ends_the_students_api_keys_and_no_one_elses(people: Any) -> None:
    """A reset is what a teacher does when someone else got into a student's account: a key
    that someone made would otherwise go on spending the student's quota, as a session would
    go on without the password's hash check."""
    _, mine = api_key_create(user=people.student, name="laptop")
    _, classmates = api_key_create(user=people.classmate)
    _, teachers = api_key_create(user=people.teacher)
    teacher = Client()
    teacher.force_login(people.teacher)
    response = teacher.post(reverse("class-roster-reset", args=[people.classroom.pk]), {"student": [people.student.pk]})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")

    assert not _in_use(mine)
    assert ApiKey.objects.get(user=people.student).status == ApiKey.Status.REVOKED
    assert _in_use(classmates) and _in_use(teachers)
    _, fresh = api_key_create(user=people.student)  # the student, with the new password, makes a new one
    assert _in_use(fresh)


def _roster_imported(people: Any, text: str) -> int:
    """The teacher imports this roster CSV into the class: the answer's status."""
    teacher = Client()
    teacher.force_login(people.teacher)
    roster = StringIO(text)
    roster.name = "roster.csv"
    return teacher.post(reverse("class-roster-import", args=[people.classroom.pk]), {"file": roster}).status_code


def test_a_password_set_by_a_roster_import_or_an_admin_ends_the_api_keys(people: Any) -> None:
    _, key = api_key_create(user=people.student)
    new_password = f"username,display name,password\n{people.student.username},,a-new-pass-phrase-9\n"
    assert _roster_imported(people, new_password) == 200
    assert not _in_use(key)

    _, key = api_key_create(user=people.student)
    admin = Client()
    admin.force_login(people.admin)
    response = admin.post(
        reverse("admin:auth_user_password_change", args=[people.student.pk]),
        {"password1": "admin-chosen-pass-77", "password2": "admin-chosen-pass-77", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert not _in_use(key)


def test_a_roster_import_that_only_enrolls_keeps_the_api_keys(people: Any) -> None:
    _, key = api_key_create(user=people.student)
    assert _roster_imported(people, f"username,display name\n{people.student.username},\n") in (200, 302)
    assert _in_use(key)
