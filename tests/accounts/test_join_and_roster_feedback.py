"""A student who joins with a code is told which class; a roster import says how many
students it brought in."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts.services import join_code_regenerate
from tests.conftest import People

pytestmark = pytest.mark.django_db
SIGN_UP = {
    "username": "lili",
    "display_name": "Li Li",
    "password": "a-long-pass-phrase",
    "password_again": "a-long-pass-phrase",
}


def test_after_joining_the_student_is_told_which_class(people: People) -> None:
    code = join_code_regenerate(classroom=people.classroom)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")

    response = client.post(reverse("register"), {"join_code": code, **SIGN_UP}, follow=True)

    assert response.redirect_chain == [(reverse("joined"), 302)]
    page = response.content.decode()
    assert "You joined Class 7A" in page and "Teacher_Wang" in page and "lili" in page
    assert f'href="{reverse("home")}"' in page


def test_a_join_link_names_the_class_before_sign_up(people: People) -> None:
    code = join_code_regenerate(classroom=people.classroom)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")

    page = client.get(reverse("register"), {"code": code.lower()}).content.decode()

    assert "This code joins the class <strong>Class 7A</strong>." in page


@pytest.mark.parametrize("problem", ["unknown", "expired"])
def test_a_bad_join_link_names_no_class(people: People, problem: str) -> None:
    code = join_code_regenerate(
        classroom=people.classroom,
        expires_at=timezone.now() - timedelta(minutes=1) if problem == "expired" else None,
    )
    page = Client().get(reverse("register"), {"code": "NOPE1234" if problem == "unknown" else code}).content.decode()
    assert 'id="joining"' not in page and "Class 7A" not in page


def test_the_joined_page_needs_a_sign_in(people: People) -> None:
    assert Client().get(reverse("joined")).status_code == 302


def test_a_roster_import_reports_how_many_students_it_imported(people: People) -> None:
    teacher = Client(HTTP_ACCEPT_LANGUAGE="en")
    teacher.force_login(people.teacher)
    url = reverse("class-roster-import", args=[people.classroom.pk])
    bad = SimpleUploadedFile("r.csv", b"username,display_name\nnot a name!,X\n", content_type="text/csv")
    assert teacher.post(url, {"file": bad}).status_code == 400
    good = SimpleUploadedFile("r.csv", b"username,display_name\nlili,Li Li\nwei,Wei\n", content_type="text/csv")

    response = teacher.post(url, {"file": good})

    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["X-Roster-Imported"] == "2"
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith("Imported 2 students. Their new passwords are in the downloaded file")
    roster = teacher.get(reverse("class-roster", args=[people.classroom.pk])).content.decode()
    assert "Imported 2 students." in roster and 'id="roster-problems"' not in roster
    assert "js/roster.js" in roster


def test_the_class_page_has_the_join_link_to_copy_and_as_a_qr_code(people: People) -> None:
    code = join_code_regenerate(classroom=people.classroom)
    teacher = Client(HTTP_ACCEPT_LANGUAGE="en")
    teacher.force_login(people.teacher)

    page = teacher.get(reverse("class-settings", args=[people.classroom.pk])).content.decode()

    link = f"http://testserver/join/?code={code}"
    assert f'<code class="join-url" id="join-link">{link}</code>' in page
    assert 'data-copy="join-link"' in page and "js/copy.js" in page
    assert '<svg viewBox="0 0 ' in page and 'class="join-qr"' in page
    assert "<title>QR code of the join link</title>" in page
    qr = page[page.index('class="join-qr"') :]
    assert "style=" not in qr[: qr.index("</svg>")]  # the CSP allows no inline styles


def test_a_class_without_a_join_code_has_no_link_or_qr_code(people: People) -> None:
    teacher = Client()
    teacher.force_login(people.teacher)
    people.classroom.join_code = ""
    people.classroom.save(update_fields=["join_code"])

    page = teacher.get(reverse("class-settings", args=[people.classroom.pk])).content.decode()

    assert 'id="join-link"' not in page and "join-qr" not in page


@pytest.mark.parametrize(
    "header",
    [
        "学号,姓名",
        "学号,姓名,密码",
        "用户名,显示名称,密码",
        "Username,Display Name,Password",
        "user_name,name",
        "账号, 名字",
    ],
)
def test_a_first_row_of_column_titles_is_skipped_in_either_language(people: People, header: str) -> None:
    """A school's own export names its columns (in China 学号, 姓名, 密码...): that row is
    the header, not a student called "学号" (nor a password "密码" refused as too short)."""
    from apps.accounts.models import User
    from apps.accounts.services import roster_parse

    lines = roster_parse(text=f"{header}\r\nwang.wu,王五\r\nli.si,李四\r\n")

    assert [(line.line, line.username, line.display_name) for line in lines] == [
        (2, "wang.wu", "王五"),
        (3, "li.si", "李四"),
    ]
    assert not User.objects.filter(username__in=["学号", "用户名", "Username"]).exists()


def test_a_first_row_of_students_is_imported(people: People) -> None:
    from apps.accounts.services import roster_parse

    assert [line.username for line in roster_parse(text="wang.wu,王五\nli.si,李四\n")] == ["wang.wu", "li.si"]
    assert [line.username for line in roster_parse(text="\n\nusername,name\nzhang,张\n")] == ["zhang"]


def test_an_expired_join_link_says_so_before_the_student_types_and_the_teacher_sees_it_expired(
    people: People,
) -> None:
    """The link or QR code of a code past its time opened a form like any other; the
    student filled in five fields to learn it was dead. The teacher's page showed the code,
    link and QR code as current."""
    from django.utils import translation

    code = join_code_regenerate(classroom=people.classroom)
    people.classroom.join_code_expires_at = timezone.now() - timedelta(minutes=5)
    people.classroom.save(update_fields=["join_code_expires_at"])

    with translation.override("en"):
        page = Client().get(reverse("register") + f"?code={code}", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="code-refused"' in page and "has expired" in page and 'id="joining"' not in page

    teacher = Client()
    teacher.force_login(people.teacher)
    settings_page = teacher.get(reverse("class-settings", args=[people.classroom.pk])).content.decode()
    assert 'id="join-code-expired"' in settings_page
    assert "join-qr" not in settings_page and 'id="join-link"' not in settings_page


def test_a_valid_join_link_names_the_class_and_no_refusal(people: People) -> None:
    code = join_code_regenerate(classroom=people.classroom)
    page = Client().get(reverse("register") + f"?code={code}").content.decode()
    assert 'id="joining"' in page and 'id="code-refused"' not in page


@pytest.mark.parametrize(
    "first", ["alice01,Alice Wang,password", "no,Nora,", "alice01,Name,"], ids=["password", "no", "name"]
)
def test_a_first_student_whose_name_or_password_is_a_title_word_is_a_student(people: People, first: str) -> None:
    """Only a row of titles, or one whose username cell is one, is the header: a student
    whose password is "password" (or called "Name") was dropped without a word."""
    from apps.accounts.services import roster_parse

    lines = roster_parse(text=f"{first}\nbob02,Bob Li,\n")
    assert [line.username for line in lines] == [first.split(",")[0], "bob02"]
