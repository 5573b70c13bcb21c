"""After too many wrong passwords django-axes locks a login. A teacher's reset (or an
admin's password change) lets the student in at once, and the roster shows and unlocks
locked students."""

from __future__ import annotations

import csv
import io

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.accounts.models import AuditEvent, User
from tests.conftest import PASSWORD, People

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str, password: str):  # type: ignore[no-untyped-def]
    return client.post(reverse("login"), {"username": username, "password": password}, HTTP_ACCEPT_LANGUAGE="en")


def lock_out(username: str) -> Client:
    """Fail AXES_FAILURE_LIMIT times from one browser; the next try, right password or
    not, gets the lock page."""
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, username, "wrong-password")
    response = log_in(client, username, PASSWORD)
    assert response.status_code == 429
    assert "ask your teacher to unlock your account or reset your password" in response.content.decode()
    return client


def teacher_client(people: People) -> Client:
    client = Client()
    client.force_login(people.teacher)
    return client


def test_a_teachers_password_reset_lets_a_locked_out_student_in(people: People) -> None:
    student_browser = lock_out("xiaoming")
    response = teacher_client(people).post(
        reverse("class-roster-reset", args=[people.classroom.pk]), {"student": [people.student.pk]}
    )
    new_password = next(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))["password"]
    response = log_in(student_browser, "xiaoming", new_password)
    assert response.status_code == 302 and response["Location"] == reverse("home")


def test_the_roster_shows_locked_students_and_unlocks_them(people: People) -> None:
    student_browser = lock_out("xiaoming")
    teacher = teacher_client(people)
    roster = reverse("class-roster", args=[people.classroom.pk])
    page = teacher.get(roster, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count("data-locked") == 1 and 'id="unlock-%d"' % people.student.pk in page
    response = teacher.post(reverse("class-roster-unlock", args=[people.classroom.pk, people.student.pk]))
    assert response.status_code == 302 and response["Location"] == roster
    assert "data-locked" not in teacher.get(roster).content.decode()
    assert log_in(student_browser, "xiaoming", PASSWORD).status_code == 302  # same password as before
    assert AuditEvent.objects.filter(action="unlock_login", subject=people.student, actor=people.teacher).exists()


def test_a_teacher_cannot_unlock_someone_elses_student(people: People) -> None:
    student_browser = lock_out("xiaogang")
    teacher = teacher_client(people)
    assert (
        teacher.post(reverse("class-roster-unlock", args=[people.classroom.pk, people.other_student.pk])).status_code
        == 404
    )
    assert (
        teacher.post(
            reverse("class-roster-unlock", args=[people.other_classroom.pk, people.other_student.pk])
        ).status_code
        == 404
    )
    assert log_in(student_browser, "xiaogang", PASSWORD).status_code == 429


def test_unlock_needs_post(people: People) -> None:
    url = reverse("class-roster-unlock", args=[people.classroom.pk, people.student.pk])
    assert teacher_client(people).get(url).status_code == 405


def test_an_admins_password_change_in_django_admin_lets_the_user_in(people: People) -> None:
    student_browser = lock_out("xiaoming")
    admin = Client()
    admin.force_login(people.admin)
    url = reverse("admin:auth_user_password_change", args=[people.student.pk])
    assert admin.get(url).status_code == 200
    response = admin.post(
        url, {"password1": "admin-chosen-pass-77", "password2": "admin-chosen-pass-77", "usable_password": "true"}
    )
    assert response.status_code == 302
    assert log_in(student_browser, "xiaoming", "admin-chosen-pass-77").status_code == 302


def test_the_admin_action_clears_lockouts(people: People) -> None:
    student_browser = lock_out("xiaoming")
    admin = Client()
    admin.force_login(people.admin)
    response = admin.post(
        reverse("admin:accounts_user_changelist"), {"action": "unlock_logins", "_selected_action": [people.student.pk]}
    )
    assert response.status_code == 302
    assert log_in(student_browser, "xiaoming", PASSWORD).status_code == 302
    assert User.objects.get(pk=people.student.pk).check_password(PASSWORD)


def login_posted_from(origin: str, *, host: str, username: str) -> int:
    """A browser's login: the form fetched from `host`, then posted with its CSRF token from
    a page at `origin`. The response's status."""
    client = Client(enforce_csrf_checks=True, HTTP_HOST=host)
    client.get(reverse("login"))
    form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    return client.post(reverse("login"), form, HTTP_ORIGIN=origin).status_code


@pytest.mark.parametrize("host", ["localhost:8080", "localhost"])
def test_a_login_form_posted_from_the_sites_own_origin_passes_the_csrf_check(people: People, host: str) -> None:
    """What a browser sends on the compose stack served on HTTP_PORT=8080 (nginx passes the
    Host header with its port, deploy/nginx.conf) and on port 80."""
    assert login_posted_from(f"http://{host}", host=host, username=people.student.username) == 302
    # The same form from a page on another port of that host is refused.
    assert login_posted_from("http://localhost:9999", host=host, username=people.student.username) == 403
