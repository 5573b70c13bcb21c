"""The socket's per-turn sign-in check: one query, the same answers as Django's get_user."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from apps.accounts.selectors import session_signs_in
from tests.conftest import People

pytestmark = pytest.mark.django_db


def _signed_in(client: Client, people: People) -> tuple[str, str]:
    client.force_login(people.student)
    session = client.session
    return session.session_key or "", session[HASH_SESSION_KEY]


def test_a_live_session_signs_its_user_in_with_one_query(
    people: People, client: Client, django_assert_num_queries: Any
) -> None:
    key, hash_ = _signed_in(client, people)
    with django_assert_num_queries(1):
        user = session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_)
    assert user == people.student


def test_a_session_that_ended_or_changed_signs_no_one_in(people: People, client: Client) -> None:
    key, hash_ = _signed_in(client, people)
    assert session_signs_in(session_key=key, user_id=people.classmate.pk, session_hash=hash_) is None
    assert session_signs_in(session_key=key, user_id=people.student.pk, session_hash="not-the-hash") is None

    people.student.set_password("a-new-password-2026")
    people.student.save(update_fields=["password"])
    assert session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_) is None


def test_logout_and_deactivation_end_it(people: People, client: Client) -> None:
    key, hash_ = _signed_in(client, people)
    people.student.is_active = False
    people.student.save(update_fields=["is_active"])
    assert session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_) is None

    people.student.is_active = True
    people.student.save(update_fields=["is_active"])
    assert session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_) == people.student
    Session.objects.filter(session_key=key).delete()
    assert session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_) is None


def test_an_expired_session_signs_no_one_in_to_the_second(people: People, client: Client) -> None:
    key, hash_ = _signed_in(client, people)
    session = Session.objects.get(session_key=key)
    for moved, signs_in in [(timedelta(seconds=-1), False), (timedelta(seconds=5), True)]:
        session.expire_date = timezone.now() + moved
        session.save(update_fields=["expire_date"])
        user = session_signs_in(session_key=key, user_id=people.student.pk, session_hash=hash_)
        assert (user == people.student) is signs_in
