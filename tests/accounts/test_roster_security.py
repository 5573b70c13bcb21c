"""Whose account a teacher may change: only students enrolled in a class they teach. A
roster row, a password reset or a co-teacher naming anyone else changes nothing."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from apps.accounts.models import AuditEvent, Classroom, Enrollment, User
from apps.accounts.services import classroom_create, enrollment_add, join_code_regenerate, user_upsert
from tests.conftest import PASSWORD, People

pytestmark = pytest.mark.django_db

TAKEOVER = "Takeover-Pass-2026x"


def upload(text: str) -> io.BytesIO:
    data = io.BytesIO(text.encode("utf-8"))
    data.name = "roster.csv"
    return data


def logged_in(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def import_roster(client: Client, classroom: Classroom, text: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("class-roster-import", args=[classroom.pk]), {"file": upload(text)}, HTTP_ACCEPT_LANGUAGE="en"
    )


def downloaded(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert response["Content-Type"].startswith("text/csv")
    return {
        row["username"]: row["password"] for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
    }


# Full-width letters: the login form reads them as "xiaogang" (NFKC), so they name the same account.
@pytest.mark.parametrize("named_as", ["xiaogang", "XiaoGang", "XIAOGANG", "ｘｉａｏｇａｎｇ"])
def test_a_teacher_cannot_take_over_another_teachers_student_by_roster_import(
    people: People, client: Client, named_as: str
) -> None:
    teacher = logged_in(client, people.teacher)
    before = User.objects.count()
    response = import_roster(teacher, people.classroom, f"newkid,New Kid,\n{named_as},Anything,{TAKEOVER}\n")
    page = response.content.decode()
    assert response.status_code == 400
    assert "Line 2" in page and "this username is taken; ask an admin to add the student" in page
    people.other_student.refresh_from_db()
    assert people.other_student.check_password(PASSWORD) and not people.other_student.check_password(TAKEOVER)
    assert people.other_student.display_name == "Xiaogang"
    assert people.other_student not in people.classroom.students.all()
    assert User.objects.count() == before  # neither newkid nor a case-variant twin was created
    assert not AuditEvent.objects.filter(action="import_roster").exists()


def test_a_row_naming_someone_elses_student_without_a_password_is_refused_too(people: People, client: Client) -> None:
    # Enrolling them would be enough: a teacher may reset passwords of their class's students.
    teacher = logged_in(client, people.teacher)
    assert import_roster(teacher, people.classroom, "xiaogang,,\n").status_code == 400
    assert people.other_student not in people.classroom.students.all()
    response = teacher.post(
        reverse("class-roster-reset", args=[people.classroom.pk]), {"student": [people.other_student.pk]}
    )
    assert response.status_code == 302
    people.other_student.refresh_from_db()
    assert people.other_student.check_password(PASSWORD)


def test_teacher_and_admin_accounts_are_refused_with_the_same_message(people: People, client: Client) -> None:
    teacher = logged_in(client, people.teacher)
    response = import_roster(teacher, people.classroom, f"Teacher_Chen,Chen,{TAKEOVER}\nroot,Root,{TAKEOVER}\n")
    page = response.content.decode()
    assert response.status_code == 400
    assert page.count("this username is taken; ask an admin to add the student") == 2
    for account in (people.other_teacher, people.admin):
        account.refresh_from_db()
        assert account.check_password(PASSWORD)


def test_a_teacher_may_bring_their_own_student_into_another_of_their_classes(people: People, client: Client) -> None:
    second = classroom_create(teacher=people.teacher, name="Robotics club")
    teacher = logged_in(client, people.teacher)
    response = import_roster(teacher, second, f"XiaoMing,Xiao Ming,{TAKEOVER}\nxiaohong,,\n")
    assert downloaded(response) == {"xiaoming": TAKEOVER}  # the stored username, not the row's spelling
    people.student.refresh_from_db()
    assert people.student.check_password(TAKEOVER) and people.student.display_name == "Xiao Ming"
    assert set(second.students.all()) == {people.student, people.classmate}
    assert not User.objects.filter(username="XiaoMing").exists()
    event = AuditEvent.objects.get(action="reset_passwords")
    assert (event.actor, event.subject, event.classroom) == (people.teacher, people.student, second)


def test_a_co_teacher_may_change_the_classes_students(people: People, client: Client) -> None:
    co_teacher = logged_in(client, people.co_teacher)
    response = import_roster(co_teacher, people.classroom, f"xiaoming,,{TAKEOVER}\n")
    assert downloaded(response) == {"xiaoming": TAKEOVER}


def test_an_admin_may_enroll_any_student(people: People, client: Client) -> None:
    admin = logged_in(client, people.admin)
    response = import_roster(admin, people.classroom, "xiaogang,,\n")
    assert response.status_code == 200 and downloaded(response) == {}
    assert people.other_student in people.classroom.students.all()


def test_a_teacher_account_enrolled_in_a_class_cannot_be_reset_from_the_roster(people: People, client: Client) -> None:
    # An admin may put a teacher's account in a class (to try it as a student); a co-teacher
    # must not get that teacher's password from it.
    enrollment_add(classroom=people.classroom, student=people.other_teacher)
    co_teacher = logged_in(client, people.co_teacher)
    response = co_teacher.post(
        reverse("class-roster-reset", args=[people.classroom.pk]),
        {"student": [people.other_teacher.pk, people.student.pk]},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 302 and response["Location"] == reverse("class-roster", args=[people.classroom.pk])
    for account in (people.other_teacher, people.student):
        account.refresh_from_db()
        assert account.check_password(PASSWORD)  # all or nothing
    assert import_roster(co_teacher, people.classroom, f"teacher_chen,,{TAKEOVER}\n").status_code == 400


def test_adding_a_co_teacher_ignores_case_and_is_recorded(people: People, client: Client) -> None:
    teacher = logged_in(client, people.teacher)
    response = teacher.post(
        reverse("class-action", args=[people.classroom.pk, "co-teacher"]), {"username": " Teacher_CHEN "}
    )
    assert response.status_code == 302
    assert people.other_teacher in people.classroom.teachers.all()
    event = AuditEvent.objects.get(action="add_teacher")
    assert (event.actor, event.subject, event.classroom) == (people.teacher, people.other_teacher, people.classroom)


@pytest.mark.parametrize("username", ["xiaoming", "nobody", "teacher_gone"])
def test_only_an_active_teacher_can_be_added_as_co_teacher(people: People, client: Client, username: str) -> None:
    user_upsert(username="teacher_gone", role=User.Role.TEACHER)
    User.objects.filter(username="teacher_gone").update(is_active=False)
    teacher = logged_in(client, people.teacher)
    before = set(people.classroom.teachers.all())
    teacher.post(reverse("class-action", args=[people.classroom.pk, "co-teacher"]), {"username": username})
    assert set(people.classroom.teachers.all()) == before
    assert not AuditEvent.objects.filter(action="add_teacher").exists()


def test_a_co_teacher_gets_the_class_and_nothing_beyond_it(people: People, client: Client) -> None:
    # teacher_wang adds teacher_chen to Class 7A. Chen now manages 7A's students, but not
    # teacher_wang's students in his other classes.
    other_class = classroom_create(teacher=people.teacher, name="Class 8B")
    lili = user_upsert(username="lili", role=User.Role.STUDENT, password=PASSWORD)[0]
    enrollment_add(classroom=other_class, student=lili)
    logged_in(client, people.teacher).post(
        reverse("class-action", args=[people.classroom.pk, "co-teacher"]), {"username": "teacher_chen"}
    )
    chen = logged_in(Client(), people.other_teacher)
    assert chen.get(reverse("class-roster", args=[people.classroom.pk])).status_code == 200
    assert chen.get(reverse("class-roster", args=[other_class.pk])).status_code == 404
    assert import_roster(chen, people.other_classroom, f"lili,,{TAKEOVER}\n").status_code == 400
    lili.refresh_from_db()
    assert (
        lili.check_password(PASSWORD)
        and not Enrollment.objects.filter(classroom=people.other_classroom, student=lili).exists()
    )
    assert set(people.other_student.classrooms.all()) == {people.other_classroom}


def test_sign_up_refuses_a_case_variant_of_an_existing_username(people: People, client: Client) -> None:
    from apps.accounts.services import join_code_regenerate

    code = join_code_regenerate(classroom=people.other_classroom)
    response = client.post(
        reverse("register"),
        {"join_code": code, "username": "XiaoMing", "password": TAKEOVER, "password_again": TAKEOVER},
    )
    assert response.status_code == 400
    assert not User.objects.filter(username="XiaoMing").exists()


@pytest.mark.parametrize("named_as", ["ｔｅａｃｈｅｒ＿ｗａｎｇ", "Ｔeacher_wang"])
def test_signing_up_under_a_full_width_twin_of_a_username_is_refused_as_taken(
    people: People, client: Client, named_as: str
) -> None:
    """The login form reads "ｔｅａｃｈｅｒ＿ｗａｎｇ" as "teacher_wang" (NFKC): an account by that
    spelling would look like the teacher's in rosters and could never log in."""
    from django.core.exceptions import ValidationError

    from apps.accounts.services import student_register

    before = User.objects.count()
    with translation.override("en"), pytest.raises(ValidationError, match="taken"):
        student_register(
            join_code=join_code_regenerate(classroom=people.classroom),
            username=named_as,
            display_name="Ms Wang",
            password=TAKEOVER,
        )
    assert User.objects.count() == before


def test_a_full_width_username_is_stored_as_the_login_form_reads_it(people: People) -> None:
    from apps.accounts.services import student_register

    user = student_register(
        join_code=join_code_regenerate(classroom=people.classroom),
        username="ｌｉｌｅｉ２０２６",
        display_name="",
        password=TAKEOVER,
    )
    assert user.username == "lilei2026"
    response = Client().post("/accounts/login/", {"username": "ｌｉｌｅｉ２０２６", "password": TAKEOVER})
    assert response.status_code == 302


def sign_up_refused_as_taken(people: People, named_as: str) -> None:
    from django.core.exceptions import ValidationError

    from apps.accounts.services import student_register

    with translation.override("en"), pytest.raises(ValidationError, match="taken"):
        student_register(
            join_code=join_code_regenerate(classroom=people.classroom),
            username=named_as,
            display_name="",
            password=TAKEOVER,
        )


@pytest.mark.parametrize("named_as", ["élodie", "ÉLODIE", "éLoDiE"])
def test_sign_up_refuses_a_case_variant_in_any_script(people: People, named_as: str) -> None:
    """Case is not only ASCII's: SQLite's lower() changed only A-Z, so "élodie" was a new
    account beside "Élodie" on the embedded set-up (one on PostgreSQL), and a roster line
    naming "élodie" could not find her."""

    from apps.accounts.selectors import users_by_folded_username
    from apps.accounts.services import user_upsert

    elodie, _ = user_upsert(username="Élodie", role=User.Role.STUDENT, password=TAKEOVER)
    assert users_by_folded_username(usernames=[named_as]) == {named_as.lower(): [elodie]}
    sign_up_refused_as_taken(people, named_as)
    assert User.objects.filter(username__in=["Élodie", named_as]).count() == 1


@pytest.mark.parametrize(("existing", "named_as"), [("ΟΔΟΣ", "ΟΔΟΣ"), ("οδοσ", "ΟΔΟΣ"), ("İlker", "İlker")])
def test_sign_up_refuses_a_taken_name_whatever_its_letters_fold_to(
    people: People, existing: str, named_as: str
) -> None:
    """Python and the database fold some letters apart (Greek final sigma, dotted İ):
    the exact name an account has was "free" on PostgreSQL, and its save a 500."""

    from apps.accounts.services import user_upsert

    user_upsert(username=existing, role=User.Role.STUDENT, password=TAKEOVER)
    sign_up_refused_as_taken(people, named_as)


def test_the_sign_up_page_answers_a_taken_greek_name_with_its_form(people: People, client: Client) -> None:
    from apps.accounts.services import user_upsert

    user_upsert(username="ΟΔΟΣ", role=User.Role.STUDENT, password=TAKEOVER)
    code = join_code_regenerate(classroom=people.classroom)
    response = client.post(
        reverse("register"),
        {"join_code": code, "username": "ΟΔΟΣ", "display_name": "x", "password": TAKEOVER, "password_again": TAKEOVER},
    )
    assert response.status_code == 400
