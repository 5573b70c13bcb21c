"""Is this student in the class: one selector set (classroom_students and the two built on
it) that every roster page, the teachers' reading view and the quota overrides ask."""

from __future__ import annotations

import pytest
from django.http import Http404
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Enrollment
from apps.accounts.selectors import classroom_has_student, classroom_student_get, classroom_students
from apps.accounts.services import classroom_settings_set
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_the_class_students_are_its_enrolled_accounts(people: People) -> None:
    assert set(classroom_students(classroom=people.classroom)) == {people.student, people.classmate}
    assert classroom_has_student(classroom=people.classroom, student=people.student)
    assert not classroom_has_student(classroom=people.classroom, student=people.other_student)
    assert not classroom_has_student(classroom=people.classroom, student=people.teacher)


def test_a_student_of_another_class_is_404(people: People) -> None:
    assert classroom_student_get(classroom=people.classroom, student_id=people.student.pk) == people.student
    with pytest.raises(Http404):
        classroom_student_get(classroom=people.classroom, student_id=people.other_student.pk)


def test_no_teacher_page_reaches_a_student_outside_the_class(people: People, client: Client) -> None:
    classroom_settings_set(
        classroom=people.classroom,
        name=people.classroom.name,
        system_prompt="",
        max_reply_tokens=None,
        teacher_can_read=True,
        allow_student_keys=False,
    )
    client.force_login(people.teacher)
    outsider = [people.classroom.pk, people.other_student.pk]
    assert client.post(reverse("class-roster-remove", args=outsider)).status_code == 404
    assert client.post(reverse("class-roster-unlock", args=outsider)).status_code == 404
    assert client.get(reverse("teacher-student-conversations", args=outsider)).status_code == 404
    assert (
        client.get(reverse("teacher-student-conversations", args=[people.classroom.pk, people.student.pk])).status_code
        == 200
    )
    assert Enrollment.objects.filter(student=people.other_student).exists()
