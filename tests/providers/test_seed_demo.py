"""`python manage.py seed_demo`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from apps.accounts.models import Classroom, Enrollment, User
from apps.providers.models import ChatModel, Provider

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    return (
        User.objects.count(),
        Classroom.objects.count(),
        Enrollment.objects.count(),
        Provider.objects.count(),
        ChatModel.objects.count(),
    )


def test_seed_demo_creates_people_class_and_demo_model_and_prints_logins() -> None:
    output = seed()
    assert set(User.objects.values_list("username", flat=True)) == {
        "admin",
        "teacher",
        "student1",
        "student2",
        "student3",
    }
    classroom = Classroom.objects.get()
    assert sorted(classroom.students.values_list("username", flat=True)) == ["student1", "student2", "student3"]
    assert list(classroom.teachers.values_list("username", flat=True)) == ["teacher"]
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="teacher").role == User.Role.TEACHER
    assert ChatModel.objects.filter(provider__slug="demo", provider__is_demo=True).exists()
    for username in ("admin", "teacher", "student1", "student2", "student3"):
        assert username in output
    assert "demo-pass-2026" in output
    assert User.objects.get(username="student1").check_password("demo-pass-2026")


def test_seed_demo_twice_creates_nothing_new() -> None:
    seed()
    before = counts()
    output = seed()
    assert counts() == before
    assert "(0 rows created)" in output


def test_seed_demo_password_resets_every_demo_user() -> None:
    seed()
    User.objects.get(username="student2").set_password("changed-by-student")
    seed("--password", "new-class-pass-9")
    for user in User.objects.all():
        assert user.check_password("new-class-pass-9")


def test_seed_demo_keeps_a_changed_password_without_the_flag() -> None:
    seed()
    student = User.objects.get(username="student2")
    student.set_password("changed-by-student")
    student.save()
    seed()
    student.refresh_from_db()
    assert student.check_password("changed-by-student")


def test_seed_demo_restores_a_deleted_demo_provider() -> None:
    Provider.objects.filter(slug="demo").delete()
    seed()
    assert ChatModel.objects.filter(provider__slug="demo", name="demo-tutor").exists()


def test_createsuperuser_makes_an_admin() -> None:
    admin = User.objects.create_superuser("headteacher", "head@example.com", "a-long-pass-phrase")
    assert (admin.role, admin.is_superuser, admin.is_staff) == ("admin", True, True)
