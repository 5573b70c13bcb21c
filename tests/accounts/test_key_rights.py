"""May this user manage keys: one selector (user_may_manage_keys) for the keys pages, the
navigation bar and the personal-key check in credential_create."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from apps.accounts.selectors import user_may_manage_keys
from apps.providers.models import Provider
from apps.providers.services import credential_create
from tests.conftest import People

pytestmark = pytest.mark.django_db


def nav(client: Client) -> str:
    html = client.get(reverse("home")).content.decode()
    return html[html.index('<nav class="topnav"') : html.index("</nav>")]


def test_teachers_and_admins_may_students_only_when_a_class_allows(people: People) -> None:
    assert user_may_manage_keys(user=people.teacher) and user_may_manage_keys(user=people.admin)
    assert not user_may_manage_keys(user=people.student)
    people.classroom.allow_student_keys = True
    people.classroom.save(update_fields=["allow_student_keys"])
    assert user_may_manage_keys(user=people.student)
    assert not user_may_manage_keys(user=people.other_student)


def test_the_nav_bar_the_keys_page_and_personal_keys_agree(people: People, client: Client) -> None:
    provider = Provider.objects.get(slug="deepseek")
    client.force_login(people.student)
    assert reverse("keys") not in nav(client)
    assert client.get(reverse("keys")).status_code == 403
    with pytest.raises(PermissionDenied):
        credential_create(actor=people.student, provider=provider, scope="user", api_key="sk-personal-1234")
    people.classroom.allow_student_keys = True
    people.classroom.save(update_fields=["allow_student_keys"])
    assert reverse("keys") in nav(client)
    assert client.get(reverse("keys")).status_code == 200
    credential_create(actor=people.student, provider=provider, scope="user", api_key="sk-personal-1234")


def test_a_student_whose_class_switched_own_keys_off_may_only_revoke_them(people: People, client: Client) -> None:
    """The keys page said 403, but replacing (key and base URL) and testing a kept key still
    worked by their URLs; revoking it stays allowed, to get rid of it."""
    people.classroom.allow_student_keys = True
    people.classroom.save(update_fields=["allow_student_keys"])
    provider = Provider.objects.get(slug="deepseek")
    credential = credential_create(actor=people.student, provider=provider, scope="user", api_key="sk-personal-1234")
    people.classroom.allow_student_keys = False
    people.classroom.save(update_fields=["allow_student_keys"])
    client.force_login(people.student)

    replaced = client.post(reverse("key-replace", args=[credential.pk]), {"api_key": "sk-another-key-9876"})
    tested = client.post(reverse("key-test", args=[credential.pk]))

    assert (replaced.status_code, tested.status_code) == (403, 403)
    credential.refresh_from_db()
    assert credential.last4 == "1234" and credential.status == "active"
    assert client.post(reverse("key-revoke", args=[credential.pk])).status_code == 302
    credential.refresh_from_db()
    assert credential.status == "revoked"
