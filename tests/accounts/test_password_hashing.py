"""Passwords are hashed before the transaction that stores them: PBKDF2 takes about a
quarter of a second of CPU on purpose, and on SQLite a transaction holds the one writer
lock every chat turn of the server needs (a 150-student roster import held every student's
next message for 35 s; 500 rows made other writes fail with "database is locked")."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection

from apps.accounts import services
from apps.accounts.models import Classroom, User
from apps.accounts.services import join_code_regenerate, passwords_reset, roster_import, student_register
from tests.conftest import People

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def hashed_in_a_transaction(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether a transaction was open at each hashing (observed; the hashing itself is real)."""
    seen: list[bool] = []

    def observed(password: Any, *args: Any, **kwargs: Any) -> str:
        seen.append(connection.in_atomic_block)
        return make_password(password, *args, **kwargs)

    monkeypatch.setattr(services, "make_password", observed)
    return seen


def test_a_roster_import_hashes_before_it_writes(people: People, hashed_in_a_transaction: list[bool]) -> None:
    rows = "\n".join(f"pupil{n},Pupil {n}," for n in range(5)) + f"\n{people.classmate.username},,Fresh-Pass-2026x"
    handed_back = roster_import(classroom=people.classroom, text=rows, actor=people.teacher)

    assert len(handed_back) == 6 and hashed_in_a_transaction == [False] * 6
    for username, _name, password in handed_back:
        assert User.objects.get(username=username).check_password(password)


def test_a_password_reset_hashes_before_it_writes(people: People, hashed_in_a_transaction: list[bool]) -> None:
    handed_back = passwords_reset(
        classroom=people.classroom, students=[people.student, people.classmate], actor=people.teacher
    )

    assert hashed_in_a_transaction == [False, False]
    for username, _name, password in handed_back:
        assert User.objects.get(username=username).check_password(password)


def test_a_sign_up_hashes_before_it_writes(people: People, hashed_in_a_transaction: list[bool]) -> None:
    code = join_code_regenerate(classroom=people.classroom)

    user = student_register(join_code=code, username="newbie", display_name="New", password="Newbie-Pass-2026x")

    assert hashed_in_a_transaction == [False]
    assert User.objects.get(pk=user.pk).check_password("Newbie-Pass-2026x")
    assert Classroom.objects.get(pk=people.classroom.pk).enrollments.filter(student=user).exists()


def test_a_name_taken_while_a_roster_is_hashed_imports_nothing(people: People, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks ran before the hashing: a sign-up of "Pupil0" meanwhile (another case)
    would have left two accounts differing only by case."""

    def signing_up_meanwhile(password: Any, *args: Any, **kwargs: Any) -> str:
        if not User.objects.filter(username="Pupil0").exists():
            User.objects.create(username="Pupil0", role=User.Role.STUDENT)
        return make_password(password, *args, **kwargs)

    monkeypatch.setattr(services, "make_password", signing_up_meanwhile)
    with pytest.raises(services.RosterError):
        roster_import(classroom=people.classroom, text="pupil0,Pupil 0,\npupil1,Pupil 1,", actor=people.teacher)
    assert not User.objects.filter(username__in=["pupil0", "pupil1"]).exists()
