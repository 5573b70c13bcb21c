"""Sealed keys: stored encrypted, bound to their row and URL, rotated, replaced, revoked."""

from __future__ import annotations

import base64
import os
from io import StringIO
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command

from apps.providers.models import ChatModel, Credential
from apps.providers.sealing import SealError, master_keys
from apps.providers.services import credential_create, credential_open, credential_replace, credential_revoke
from tests.conftest import People

pytestmark = pytest.mark.django_db
SECRET = "sk-test-abcdefghijklmnop-WXYZ"


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


@pytest.fixture
def class_key(people: People, keyed_model: ChatModel) -> Credential:
    return credential_create(
        actor=people.teacher,
        provider=keyed_model.provider,
        scope="class",
        classroom=people.classroom,
        api_key=SECRET,
        label="7A key",
    )


def test_key_is_stored_sealed_and_opens_to_the_original(class_key: Credential) -> None:
    row = Credential.objects.get(pk=class_key.pk)
    assert SECRET.encode() not in bytes(row.sealed)
    assert row.last4 == "WXYZ" and row.masked == "…WXYZ"
    assert credential_open(credential=row).api_key == SECRET
    assert SECRET not in repr(credential_open(credential=row))


def test_sealed_bytes_copied_into_another_row_do_not_open(
    people: People, keyed_model: ChatModel, class_key: Credential
) -> None:
    other = credential_create(
        actor=people.teacher, provider=keyed_model.provider, scope="user", api_key="sk-other-1234"
    )
    Credential.objects.filter(pk=other.pk).update(sealed=class_key.sealed, kek_id=class_key.kek_id, last4="WXYZ")
    with pytest.raises(SealError):
        credential_open(credential=Credential.objects.get(pk=other.pk))


def test_changing_the_base_url_in_the_database_breaks_the_key(class_key: Credential) -> None:
    Credential.objects.filter(pk=class_key.pk).update(base_url="https://attacker.example/v1")
    with pytest.raises(SealError):
        credential_open(credential=Credential.objects.get(pk=class_key.pk))


def test_replace_needs_the_key_again_and_binds_the_new_url(class_key: Credential, settings: Any) -> None:
    settings.OUTBOUND_ALLOWED_NETWORKS = ["8.8.8.8/32"]
    credential_replace(credential=class_key, api_key="sk-new-key-0000", base_url="http://8.8.8.8/v1")
    row = Credential.objects.get(pk=class_key.pk)
    assert (row.base_url, row.last4) == ("http://8.8.8.8/v1", "0000")
    assert credential_open(credential=row).api_key == "sk-new-key-0000"


def test_a_replaced_key_forgets_the_old_keys_check(class_key: Credential) -> None:
    """The page said "Active" over "checked ...: rejected": the check was the old key's."""
    from django.utils import timezone

    Credential.objects.filter(pk=class_key.pk).update(
        last_checked_at=timezone.now(), last_check_result=Credential.CheckResult.REJECTED
    )
    credential_replace(credential=Credential.objects.get(pk=class_key.pk), api_key="sk-new-key-0000")
    row = Credential.objects.get(pk=class_key.pk)
    assert (row.status, row.last_checked_at, row.last_check_result) == (Credential.Status.ACTIVE, None, "")


def test_revoked_key_stays_but_cannot_be_replaced(class_key: Credential) -> None:
    credential_revoke(credential=class_key)
    assert Credential.objects.get(pk=class_key.pk).status == Credential.Status.REVOKED
    with pytest.raises(ValidationError):
        credential_replace(credential=class_key, api_key="sk-new")


@pytest.mark.parametrize("bad", ["", "   ", "has a space", "x" * 600])
def test_bad_keys_are_refused_and_nothing_is_saved(people: People, keyed_model: ChatModel, bad: str) -> None:
    with pytest.raises(ValidationError):
        credential_create(actor=people.teacher, provider=keyed_model.provider, scope="user", api_key=bad)
    assert Credential.objects.count() == 0


def test_teacher_cannot_attach_a_key_to_another_teachers_class(people: People, keyed_model: ChatModel) -> None:
    with pytest.raises(PermissionDenied):
        credential_create(
            actor=people.teacher,
            provider=keyed_model.provider,
            scope="class",
            classroom=people.other_classroom,
            api_key=SECRET,
        )


def test_only_admins_add_site_keys_and_students_need_permission(people: People, keyed_model: ChatModel) -> None:
    with pytest.raises(PermissionDenied):
        credential_create(actor=people.teacher, provider=keyed_model.provider, scope="site", api_key=SECRET)
    with pytest.raises(PermissionDenied):
        credential_create(actor=people.student, provider=keyed_model.provider, scope="user", api_key=SECRET)
    people.classroom.allow_student_keys = True
    people.classroom.save()
    assert credential_create(actor=people.student, provider=keyed_model.provider, scope="user", api_key=SECRET)
    assert credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key=SECRET)


def test_rotate_keys_reseals_under_the_new_master_key_and_can_run_again(
    class_key: Credential, people: People, keyed_model: ChatModel, settings: Any
) -> None:
    second = credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key="sk-site-9999")
    old = settings.KEY_ENCRYPTION_KEYS[0]
    settings.KEY_ENCRYPTION_KEYS = [new_master_key(), old]
    new_id = master_keys()[0].kek_id

    out = StringIO()
    call_command("rotate_keys", stdout=out)
    assert "rotated: 2, already current: 0, cannot open: 0" in out.getvalue()
    assert set(Credential.objects.values_list("kek_id", flat=True)) == {new_id}

    settings.KEY_ENCRYPTION_KEYS = settings.KEY_ENCRYPTION_KEYS[:1]  # the old key is gone now
    assert credential_open(credential=Credential.objects.get(pk=class_key.pk)).api_key == SECRET
    assert credential_open(credential=Credential.objects.get(pk=second.pk)).api_key == "sk-site-9999"
    out = StringIO()
    call_command("rotate_keys", stdout=out)
    assert "rotated: 0, already current: 2" in out.getvalue()


def test_rotate_after_an_interruption_finishes_the_rest(
    class_key: Credential, people: People, keyed_model: ChatModel, settings: Any
) -> None:
    credential_create(actor=people.admin, provider=keyed_model.provider, scope="site", api_key="sk-site-9999")
    settings.KEY_ENCRYPTION_KEYS = [new_master_key(), settings.KEY_ENCRYPTION_KEYS[0]]
    # An interrupted run: only the first row was re-sealed.
    from apps.providers.services import _seal_into
    from apps.providers.services import credential_open as open_

    first = Credential.objects.order_by("pk").first()
    _seal_into(first, open_(credential=first))
    first.save(update_fields=["sealed", "kek_id"])

    out = StringIO()
    call_command("rotate_keys", stdout=out)
    assert "rotated: 1, already current: 1, cannot open: 0" in out.getvalue()


def test_missing_master_key_is_a_clear_startup_error_and_rotate_fails_loudly(
    class_key: Credential, settings: Any
) -> None:
    settings.KEY_ENCRYPTION_KEYS = [new_master_key()]
    errors = [e for e in run_checks() if e.id and e.id.startswith("webchat.")]
    assert errors and "not in KEY_ENCRYPTION_KEYS" in errors[0].msg
    with pytest.raises(CommandError, match="could not be opened"):
        call_command("rotate_keys", stdout=StringIO())


def test_healthy_keys_pass_the_startup_check(class_key: Credential) -> None:
    assert [e for e in run_checks() if e.id and e.id.startswith("webchat.")] == []
