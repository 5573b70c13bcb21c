"""What teachers do every week: classes, join codes, rosters, passwords, co-teachers."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import AuditEvent, Classroom, Enrollment, User
from apps.accounts.services import join_code_regenerate
from tests.conftest import PASSWORD, People

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(people: People, client: Client) -> Client:
    client.force_login(people.teacher)
    return client


def upload(text: str, name: str = "roster.csv") -> io.BytesIO:
    data = io.BytesIO(text.encode("utf-8"))
    data.name = name
    return data


def downloaded(response) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_teacher_creates_and_edits_a_class(people: People, teacher: Client) -> None:
    response = teacher.post(reverse("classes"), {"name": "Class 8B"})
    classroom = Classroom.objects.get(name="Class 8B")
    assert response["Location"] == reverse("class-settings", args=[classroom.pk])
    assert len(classroom.join_code) == 8 and list(classroom.teachers.all()) == [people.teacher]
    response = teacher.post(
        reverse("class-settings", args=[classroom.pk]),
        {
            "name": "Class 8B (AI)",
            "system_prompt": "Answer in simple English.",
            "max_reply_tokens": "300",
            "teacher_can_read": "on",
        },
    )
    assert response.status_code == 302
    classroom.refresh_from_db()
    assert (classroom.name, classroom.system_prompt, classroom.max_reply_tokens, classroom.teacher_can_read) == (
        "Class 8B (AI)",
        "Answer in simple English.",
        300,
        True,
    )


def test_bad_class_settings_are_400_and_change_nothing(people: People, teacher: Client) -> None:
    response = teacher.post(
        reverse("class-settings", args=[people.classroom.pk]), {"name": "", "max_reply_tokens": "3"}
    )
    assert response.status_code == 400
    people.classroom.refresh_from_db()
    assert people.classroom.name != "" and people.classroom.max_reply_tokens is None


def test_another_teachers_class_is_404(people: People, teacher: Client) -> None:
    for name in ("class-settings", "class-roster"):
        assert teacher.get(reverse(name, args=[people.other_classroom.pk])).status_code == 404
    assert teacher.post(reverse("class-action", args=[people.other_classroom.pk, "archive"])).status_code == 404
    assert teacher.post(reverse("class-roster-import", args=[people.other_classroom.pk])).status_code == 404


def test_students_cannot_open_teacher_pages(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.get(reverse("classes")).status_code == 403
    assert client.get(reverse("class-settings", args=[people.classroom.pk])).status_code == 404


def test_co_teacher_and_archive(people: People, teacher: Client) -> None:
    teacher.post(reverse("class-action", args=[people.classroom.pk, "co-teacher"]), {"username": "teacher_chen"})
    assert people.other_teacher in people.classroom.teachers.all()
    teacher.post(reverse("class-action", args=[people.classroom.pk, "co-teacher"]), {"username": "xiaoming"})
    assert people.student not in people.classroom.teachers.all()
    teacher.post(reverse("class-action", args=[people.classroom.pk, "archive"]))
    people.classroom.refresh_from_db()
    assert people.classroom.archived
    assert "Class 7A" not in teacher.get(reverse("classes")).content.decode()
    assert "Class 7A" in teacher.get(reverse("classes"), {"archived": "1"}).content.decode()


def test_student_signs_up_with_the_join_code(people: People, client: Client) -> None:
    code = join_code_regenerate(classroom=people.classroom)
    response = client.post(
        reverse("register"),
        {
            "join_code": code.lower(),
            "username": "lili",
            "display_name": "Li Li",
            "password": "a-long-pass-phrase",
            "password_again": "a-long-pass-phrase",
        },
    )
    assert response.status_code == 302
    lili = User.objects.get(username="lili")
    assert lili.role == "student" and Enrollment.objects.filter(classroom=people.classroom, student=lili).exists()
    assert client.get(reverse("home")).status_code == 200  # logged in


@pytest.mark.parametrize("problem", ["bad code", "expired", "archived", "weak password", "taken", "mismatch"])
def test_bad_sign_ups_change_nothing(people: People, client: Client, problem: str) -> None:
    code = join_code_regenerate(
        classroom=people.classroom, expires_at=timezone.now() - timedelta(minutes=1) if problem == "expired" else None
    )
    if problem == "archived":
        people.classroom.archived = True
        people.classroom.save()
    data = {
        "join_code": "WRONG123" if problem == "bad code" else code,
        "username": "xiaoming" if problem == "taken" else "newkid",
        "password": "123" if problem == "weak password" else "a-long-pass-phrase",
        "password_again": "different-phrase"
        if problem == "mismatch"
        else ("123" if problem == "weak password" else "a-long-pass-phrase"),
    }
    before = User.objects.count()
    assert client.post(reverse("register"), data).status_code == 400
    assert User.objects.count() == before


def test_roster_import_generates_passwords_and_hands_them_back_once(people: People, teacher: Client) -> None:
    text = "username,display name,password\nzhangsan,张三,\nlisi,李四,my-own-passphrase-1\nxiaoming,,\n"
    response = teacher.post(reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload(text)})
    rows = downloaded(response)
    assert [r["username"] for r in rows] == ["zhangsan", "lisi"]  # xiaoming existed: enrolled, password kept
    zhangsan = User.objects.get(username="zhangsan")
    assert zhangsan.display_name == "张三" and zhangsan.check_password(rows[0]["password"])
    assert User.objects.get(username="lisi").check_password("my-own-passphrase-1")
    assert people.student.check_password("correct-horse-battery-42")
    assert set(people.classroom.students.values_list("username", flat=True)) >= {"zhangsan", "lisi", "xiaoming"}
    assert AuditEvent.objects.filter(action="import_roster").exists()


def test_the_handed_back_passwords_file_writes_a_formula_in_a_name_as_text(people: People, teacher: Client) -> None:
    text = "username,display name\nzhangsan,=1+1\nlisi,@SUM(A1)\n"
    response = teacher.post(reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload(text)})
    assert [row["display_name"] for row in downloaded(response)] == ["'=1+1", "'@SUM(A1)"]
    assert User.objects.get(username="zhangsan").display_name == "=1+1"  # stored as given


def test_a_roster_saved_with_old_mac_line_ends_imports(people: People, teacher: Client) -> None:
    response = teacher.post(
        reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload("alice1,Alice\rbob1,Bob\r")}
    )
    assert [row["username"] for row in downloaded(response)] == ["alice1", "bob1"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("good1,Good\nnul1,Ze\x00d\n", "Line 2"),  # PostgreSQL cannot store a NUL (it was a 500)
        ("good1,Good\nbig1," + "x" * 140_000 + "\n", "Line 2"),  # past the csv module's field limit (a 500)
    ],
)
def test_a_line_that_cannot_be_read_or_stored_is_reported_and_nothing_is_imported(
    people: People, teacher: Client, text: str, line: str
) -> None:
    response = teacher.post(
        reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload(text)}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400 and line in response.content.decode()
    assert not User.objects.filter(username="good1").exists()


def test_a_bad_row_is_reported_with_its_line_and_nothing_is_imported(people: People, teacher: Client) -> None:
    text = "username,display name\ngood1,Good\nbad user!,Bad\ngood1,Again\nteacher_chen,Nope\nweak,W,123\n"
    response = teacher.post(
        reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload(text)}, HTTP_ACCEPT_LANGUAGE="en"
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "Line 3" in page and "Line 4" in page
    assert not User.objects.filter(username="good1").exists()


def test_teacher_account_in_a_roster_is_refused(people: People, teacher: Client) -> None:
    response = teacher.post(
        reverse("class-roster-import", args=[people.classroom.pk]),
        {"file": upload("teacher_chen,Chen\n")},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 400 and "Line 1" in response.content.decode()
    assert people.other_teacher not in people.classroom.students.all()


def test_a_password_reset_ignores_ticks_that_are_not_ids(people: People, teacher: Client) -> None:
    response = teacher.post(
        reverse("class-roster-reset", args=[people.classroom.pk]),
        {"student": ["²", "9" * 30, "-1", "x", str(people.student.pk)]},  # "²".isdigit() is True; int() refuses it
    )
    assert [row["username"] for row in downloaded(response)] == ["xiaoming"]


def test_bulk_password_reset_and_remove(people: People, teacher: Client, client: Client) -> None:
    response = teacher.post(
        reverse("class-roster-reset", args=[people.classroom.pk]),
        {"student": [people.student.pk, people.classmate.pk, people.other_student.pk]},
    )
    rows = {r["username"]: r["password"] for r in downloaded(response)}
    assert set(rows) == {"xiaoming", "xiaohong"}  # someone else's student is not reset
    people.student.refresh_from_db()
    assert people.student.check_password(rows["xiaoming"])
    assert AuditEvent.objects.filter(action="reset_passwords").count() == 2
    teacher.post(reverse("class-roster-remove", args=[people.classroom.pk, people.classmate.pk]))
    assert people.classmate not in people.classroom.students.all()
    assert User.objects.filter(pk=people.classmate.pk).exists()


def test_join_code_regenerate_and_expire(people: People, teacher: Client) -> None:
    teacher.post(reverse("class-action", args=[people.classroom.pk, "join-code"]), {})
    people.classroom.refresh_from_db()
    first = people.classroom.join_code
    teacher.post(reverse("class-action", args=[people.classroom.pk, "join-code"]), {})
    people.classroom.refresh_from_db()
    assert people.classroom.join_code and people.classroom.join_code != first
    teacher.post(reverse("class-action", args=[people.classroom.pk, "join-code-expire"]))
    people.classroom.refresh_from_db()
    assert people.classroom.join_code == ""


def test_login_is_throttled_after_repeated_failures(people: People, client: Client) -> None:
    statuses = [
        client.post(reverse("login"), {"username": "xiaoming", "password": "guess"}).status_code for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth wrong password locks the account out here
    locked = client.post(reverse("login"), {"username": "xiaoming", "password": "correct-horse-battery-42"})
    assert locked.status_code == 429


def test_a_teacher_an_admin_makes_a_student_loses_every_power_over_their_old_classes(
    people: People, teacher: Client
) -> None:
    """The account keeps its links to the classes (they come back if it is made a teacher
    again) but they give it nothing: no page, no roster reset, no class key, no reading."""
    from apps.conversations.models import Conversation
    from apps.providers.models import Provider
    from apps.providers.services import credential_create

    people.classroom.teacher_can_read = True
    people.classroom.save()
    conversation = Conversation.objects.create(owner=people.student, classroom=people.classroom, title="t")
    key = credential_create(  # the co-teacher's (a key one added stays theirs to revoke)
        actor=people.co_teacher,
        provider=Provider.objects.get(slug="deepseek"),
        scope="class",
        classroom=people.classroom,
        api_key="sk-class-key-0001",
    )
    people.teacher.role = User.Role.STUDENT
    people.teacher.save()
    room = people.classroom.pk
    for url in [
        reverse("class-settings", args=[room]),
        reverse("class-roster", args=[room]),
        reverse("class-models", args=[room]),
        reverse("teacher-read", args=[conversation.pk]),
        reverse("teacher-student-conversations", args=[room, people.student.pk]),
    ]:
        assert teacher.get(url).status_code in (403, 404), url
    reset = teacher.post(reverse("class-roster-reset", args=[room]), {"student": [people.student.pk]})
    assert reset.status_code in (403, 404)
    assert teacher.post(reverse("key-revoke", args=[key.pk])).status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None
    people.student.refresh_from_db()
    assert people.student.check_password(PASSWORD)  # the password was not reset


def test_a_roster_with_a_quote_left_open_is_refused_with_its_line(people: People, teacher: Client) -> None:
    text = 'username,display name\nnewstu40,"Name\nnewstu41,B\nnewstu42,C\n'
    response = teacher.post(reverse("class-roster-import", args=[people.classroom.pk]), {"file": upload(text)})
    assert response.status_code == 400
    assert not User.objects.filter(username__startswith="newstu").exists()


def test_hostile_numbers_and_dates_on_class_pages_are_400_and_change_nothing(people: People, teacher: Client) -> None:
    room = people.classroom.pk
    response = teacher.post(reverse("class-models", args=[room]), {"allowed_models": ["1" + "0" * 29]})
    assert response.status_code == 400
    code = people.classroom.join_code
    response = teacher.post(
        reverse("class-action", args=[room, "join-code"]),
        {"expires_at": "0001-01-01T00:00"},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and "That date is not valid." in response.content.decode()
    people.classroom.refresh_from_db()
    assert people.classroom.join_code == code and not people.classroom.join_code_expires_at
