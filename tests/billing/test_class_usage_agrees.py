"""The class usage page never contradicts itself: with ledger rows newer than the last
rollup (Celery rebuilds the rollups every few minutes), the totals, the chart, the models,
the entry points, the top users and every student's row all count the same requests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import Enrollment
from apps.billing.models import JobRun
from apps.billing.services import usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People

pytestmark = pytest.mark.django_db

MARCH_4_NOON = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)  # noon in Shanghai


def cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", " ", cell).split() for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)]


def table(page: str, table_id: str) -> str:
    start = page.index(f'id="{table_id}"')
    return page[start : page.index("</table>", start)]


def rows(page: str, table_id: str) -> list[list[list[str]]]:
    """The table's body rows (and footer), each a list of cells, each cell's words."""
    html = table(page, table_id)
    return [cells(row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S) if "<td" in row]


def number(words: list[str]) -> int:
    return int(words[0])


@pytest.fixture
def used_after_the_rollup(people: People, fake_model: ChatModel) -> None:
    """Two requests rolled up at 09:00, then five chats and two API calls (one of them by a
    classmate) after it, not rolled up yet."""
    policy_set(people.classroom, period="month")
    with time_machine.travel(datetime(2026, 3, 4, 0, 30, tzinfo=UTC), tick=False):  # 08:30
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=50), 100, 50)
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=50), 100, 50)
    with time_machine.travel(datetime(2026, 3, 4, 1, 0, tzinfo=UTC), tick=False):  # 09:00
        usage_rollup(since=datetime(2026, 3, 3, tzinfo=UTC))
    with time_machine.travel(datetime(2026, 3, 4, 3, 0, tzinfo=UTC), tick=False):  # 11:00
        for _ in range(5):
            settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=50), 100, 50)
        settle(
            take(people.student, people.classroom, fake_model, prompt=100, max_tokens=50, entry_point="api"), 100, 50
        )
        settle(
            take(people.classmate, people.classroom, fake_model, prompt=10, max_tokens=10, entry_point="api"), 10, 10
        )


def usage_page(client: Client, people: People, language: str) -> str:
    with time_machine.travel(MARCH_4_NOON, tick=False):
        response = client.get(reverse("class-usage", args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_every_figure_counts_the_requests_the_rollup_has_not_reached(
    people: People, client: Client, used_after_the_rollup: None, language: str
) -> None:
    assert JobRun.objects.get(name="rollup_usage").last_success_at < datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    client.force_login(people.teacher)
    page = usage_page(client, people, language)

    # Each student's row: requests = chat + API, and all of them counted.
    students = {row[0][-1]: [number(cell) for cell in row[1:6]] for row in rows(page, "student-usage")[:-1]}
    assert students["xiaoming"] == [8, 7, 1, 800, 400]  # requests, chat, API, input, output
    assert students["xiaohong"] == [1, 0, 1, 10, 10]
    for requests, chat, api, *_ in students.values():
        assert requests == chat + api

    # The footer, the summary, the models and the entry points: the same 9 requests.
    total = rows(page, "student-usage")[-1]
    assert [number(cell) for cell in total[1:6]] == [9, 7, 2, 810, 410]
    assert re.search(r'data-stat="requests">9<', page)
    assert re.search(r'data-stat="prompt">810<', page)
    assert re.search(r'data-stat="completion">410<', page)
    by_model = rows(page, "model-usage")
    assert len(by_model) == 1 and number(by_model[0][1]) == 9 and number(by_model[0][2]) == 1220
    assert [number(row[1]) for row in rows(page, "entry-point-usage")] == [7, 2]

    # The chart draws the day (not "no usage"), and the top users are named.
    assert page.count('class="uchart-bar series-0"') == 1
    assert 'data-day="2026-03-04"' in page
    top = page[page.index('id="top-users"') : page.index("</ol>", page.index('id="top-users"'))]
    assert "Xiaoming" in top and "Xiaohong" in top and "—</li>" not in top


def test_the_figures_agree_without_any_rollup_yet(people: People, client: Client, fake_model: ChatModel) -> None:
    """A new site whose Celery has not run: the page still shows what was used."""
    policy_set(people.classroom, period="month")
    with time_machine.travel(datetime(2026, 3, 4, 2, 0, tzinfo=UTC), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=50), 100, 50)
    assert not JobRun.objects.filter(name="rollup_usage").exists()
    client.force_login(people.teacher)
    page = usage_page(client, people, "zh-hans")
    students = {row[0][-1]: [number(cell) for cell in row[1:4]] for row in rows(page, "student-usage")[:-1]}
    assert students["xiaoming"] == [1, 1, 0]
    assert number(rows(page, "model-usage")[0][1]) == 1
    assert page.count('class="uchart-bar series-0"') == 1


def test_a_student_who_left_still_counts_in_the_range(
    people: People, client: Client, used_after_the_rollup: None
) -> None:
    """Their requests stay in the class's totals, so the student rows still add up to them."""
    Enrollment.objects.filter(classroom=people.classroom, student=people.classmate).delete()
    client.force_login(people.teacher)
    page = usage_page(client, people, "en")
    body = rows(page, "student-usage")
    left = [row for row in body if "xiaohong" in row[0]]
    assert left and "left" in " ".join(left[0][0])
    assert [number(cell) for cell in body[-1][1:4]] == [9, 7, 2]
