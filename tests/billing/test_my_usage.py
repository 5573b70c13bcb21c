"""Everyone's own usage page (/usage/): the requests of the current quota period from the
ledger, chat replies and API calls alike, with a summary and a daily chart; and the
entry-point split on the teachers' class usage page."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from apps.accounts.services import user_upsert
from apps.billing.models import LedgerEntry
from apps.billing.services import ledger_correct, usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, streamed, take
from tests.conftest import PASSWORD, People

pytestmark = pytest.mark.django_db

MARCH_4 = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)  # noon in Shanghai
MY_USAGE = "/usage/"


def charge(
    user: User, classroom, model: ChatModel, when: datetime, prompt: int, completion: int, **hold
) -> LedgerEntry:  # type: ignore[no-untyped-def]
    """A request billed at `when` through the real hold and settle."""
    with time_machine.travel(when, tick=False):
        return settle(take(user, classroom, model, prompt=prompt, max_tokens=completion, **hold), prompt, completion)


def page_for(client: Client, user: User | None, **query: str):  # type: ignore[no-untyped-def]
    """/usage/ as `user` (None: whoever is logged in) at noon on 4 March."""
    if user is not None:
        client.force_login(user)
    with time_machine.travel(MARCH_4, tick=False):
        return client.get(MY_USAGE, query, HTTP_ACCEPT_LANGUAGE="en")


def ledger_rows(html: str) -> dict[str, str]:
    """request id -> the row's HTML, for the rows of the requests table."""
    return dict(re.findall(r'<tr data-request="([^"]+)"[^>]*>(.*?)</tr>', html, re.S))


def cells(row_html: str) -> list[str]:
    return [text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def stat(html: str, name: str) -> str:
    found = re.search(rf'data-stat="{name}">(.*?)</dd>', html, re.S)
    assert found, name
    return text(found.group(1))


@pytest.fixture
def monthly(people: People) -> People:
    policy_set(people.classroom, period="month", student_token_limit=100_000)
    return people


def test_chat_replies_and_api_requests_are_listed_with_their_figures(
    client: Client, monthly: People, fake_model: ChatModel
) -> None:
    chat = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 3, 2, tzinfo=UTC), 1000, 500)
    api = charge(
        monthly.student,
        monthly.classroom,
        fake_model,
        datetime(2026, 3, 4, 2, tzinfo=UTC),
        2000,
        250,
        entry_point="api",
    )
    response = page_for(client, monthly.student)
    assert response.status_code == 200
    html = response.content.decode()
    rows = ledger_rows(html)
    assert list(rows) == [api.request_id, chat.request_id]  # newest first
    # time (Shanghai), model, entry point, in, out, cost, first token, status
    assert cells(rows[chat.request_id]) == [
        "2026-03-03 10:00:00",
        "fakeai/fake-model",
        "Chat",
        "1000",
        "500",
        "0.006000 CNY",  # 1000 × 2 + 500 × 8 per million
        "120 ms",
        "Complete",
    ]
    assert cells(rows[api.request_id])[2:6] == ["API", "2000", "250", "0.006000 CNY"]
    assert stat(html, "requests") == "2"
    assert "1 chat · 1 API" in html
    assert stat(html, "prompt") == "3000" and stat(html, "completion") == "750"
    assert stat(html, "cost") == "0.0120 CNY"
    assert stat(html, "left") == "96250 of 100000 tokens"  # as the meter counts it
    assert "Quota period: 2026-03-01 to 2026-03-31." in html
    assert html.count('class="uchart-day"') == 31  # every day of March on the chart


def test_another_users_requests_never_appear(client: Client, monthly: People, fake_model: ChatModel) -> None:
    when = datetime(2026, 3, 3, 2, tzinfo=UTC)
    mine = charge(monthly.student, monthly.classroom, fake_model, when, 100, 10)
    classmate = charge(monthly.classmate, monthly.classroom, fake_model, when, 200, 20)
    stranger = charge(monthly.other_student, monthly.other_classroom, fake_model, when, 300, 30, entry_point="api")
    teacher = charge(monthly.teacher, None, fake_model, when, 400, 40)
    html = page_for(client, monthly.student).content.decode()
    assert list(ledger_rows(html)) == [mine.request_id]
    for other in (classmate, stranger, teacher):
        assert other.request_id not in html
    assert stat(html, "prompt") == "100"
    teachers_page = page_for(Client(), monthly.teacher).content.decode()
    assert list(ledger_rows(teachers_page)) == [teacher.request_id]


def test_only_requests_inside_the_quota_period_are_shown(
    client: Client, monthly: People, fake_model: ChatModel
) -> None:
    # Shanghai midnight is 16:00 UTC the day before.
    before = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 2, 28, 15, 59, 59, tzinfo=UTC), 1, 1)
    first = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 2, 28, 16, 0, tzinfo=UTC), 2, 2)
    last = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 31, 15, 59, 59, tzinfo=UTC), 3, 3)
    after = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 31, 16, 0, tzinfo=UTC), 4, 4)
    with time_machine.travel(datetime(2026, 3, 31, 15, 0, tzinfo=UTC), tick=False):
        client.force_login(monthly.student)
        html = client.get(MY_USAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert list(ledger_rows(html)) == [last.request_id, first.request_id]
    assert before.request_id not in html and after.request_id not in html
    assert stat(html, "prompt") == "5"


def test_a_weekly_period_starts_on_monday(client: Client, monthly: People, fake_model: ChatModel) -> None:
    policy_set(monthly.classroom, period="week")
    sunday = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 1, 4, tzinfo=UTC), 1, 1)
    monday = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 2, 4, tzinfo=UTC), 2, 2)
    html = page_for(client, monthly.student).content.decode()
    assert list(ledger_rows(html)) == [monday.request_id]
    assert sunday.request_id not in html
    assert "Quota period: 2026-03-02 to 2026-03-08." in html
    assert html.count('class="uchart-day"') == 7


def test_a_term_that_is_not_running_shows_the_last_30_days(
    client: Client, monthly: People, fake_model: ChatModel
) -> None:
    policy_set(monthly.classroom, period="term", term_start=date(2025, 9, 1), term_end=date(2026, 1, 15))
    html = page_for(client, monthly.student).content.decode()
    assert "no quota period now. Shown: 2026-02-03 to 2026-03-04." in html


def test_corrections_are_listed_and_counted_in_the_totals(
    client: Client, monthly: People, fake_model: ChatModel
) -> None:
    original = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 3, 2, tzinfo=UTC), 1000, 500)
    with time_machine.travel(datetime(2026, 3, 4, 1, tzinfo=UTC), tick=False):
        correction = ledger_correct(
            entry=original,
            prompt_tokens=0,
            completion_tokens=-100,
            cost_billing=Decimal("-0.0008"),
            note="provider refunded 100 tokens",
        )
    html = page_for(client, monthly.student).content.decode()
    rows = ledger_rows(html)
    assert list(rows) == [correction.request_id, original.request_id]
    row = cells(rows[correction.request_id])
    assert row[3:6] == ["0", "-100", "-0.000800 CNY"]
    assert row[7] == "Correction of the request at 2026-03-03 10:00:00: provider refunded 100 tokens"
    assert stat(html, "requests") == "1"  # a correction is not another request
    assert stat(html, "completion") == "400"
    assert stat(html, "cost") == "0.0052 CNY"
    assert 'height="-' not in html  # 4 March, the correction's day, is -100 tokens: no bar, not a negative one
    march_3 = html[html.index('data-day="2026-03-03"') :]
    assert re.search(
        r"<rect class=\"uchart-bar series-0\" x=\"2.15\" y=\"0(.0)?\" width=\"0.7\" height=\"90(.0)?\"/>",
        march_3[:1000],
    )  # 1500 of 2000
    march_4 = html[html.index('data-day="2026-03-04"') :]
    assert "uchart-bar" not in march_4[: march_4.index("</g>")]  # its day is -100 tokens: no bar
    ledger = LedgerEntry.objects.filter(user=monthly.student)
    assert sum(e.cost_billing for e in ledger) == Decimal("0.0052")  # the totals are the ledger's


def test_the_requests_are_paginated_fifty_to_a_page(client: Client, monthly: People, fake_model: ChatModel) -> None:
    entries = [
        charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 2, 1, n, tzinfo=UTC), 10, 1)
        for n in range(55)
    ]
    newest_first = [e.request_id for e in reversed(entries)]
    first = page_for(client, monthly.student).content.decode()
    assert list(ledger_rows(first)) == newest_first[:50]
    assert "Page 1 of 2" in first and 'href="?page=2"' in first
    assert stat(first, "requests") == "55"  # the summary is the whole period's
    second = page_for(client, monthly.student, page="2").content.decode()
    assert list(ledger_rows(second)) == newest_first[50:]
    assert 'href="?page=1"' in second
    assert page_for(client, monthly.student, page="3").status_code == 404
    assert page_for(client, monthly.student, page="two").status_code == 400


def test_a_user_without_a_class_sees_their_own_usage_under_the_site_limits(
    client: Client, people: People, fake_model: ChatModel
) -> None:
    loner, _ = user_upsert(username="loner", role=User.Role.STUDENT, display_name="Loner", password=PASSWORD)
    entry = charge(loner, None, fake_model, datetime(2026, 3, 2, 1, tzinfo=UTC), 50, 5, entry_point="api")
    html = page_for(client, loner).content.decode()
    assert "You are not in a class" in html
    assert list(ledger_rows(html)) == [entry.request_id]
    assert "Quota period: 2026-03-01 to 2026-03-31." in html  # the site's default: a month
    assert stat(html, "left") == "199945 of 200000 tokens"


def test_an_empty_period_says_so(client: Client, monthly: People) -> None:
    response = page_for(client, monthly.student)
    assert response.status_code == 200
    html = response.content.decode()
    assert "No requests in this period yet." in html
    assert stat(html, "requests") == "0"


def test_the_page_needs_a_login_and_only_answers_get(client: Client, monthly: People) -> None:
    response = client.get(MY_USAGE)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(monthly.student)
    assert client.post(MY_USAGE).status_code == 405


def test_the_chat_pages_quota_meter_links_to_the_usage_page(client: Client, monthly: People) -> None:
    client.force_login(monthly.student)
    html = client.get(reverse("home")).content.decode()
    meter = html[html.index('id="quota-meter"') :]
    meter = meter[: meter.index("</div>")]
    assert f'href="{reverse("my-usage")}"' in meter
    assert reverse("my-usage") == MY_USAGE


def test_the_page_does_not_grow_queries_with_its_rows(
    client: Client, monthly: People, fake_model: ChatModel, django_assert_max_num_queries
) -> None:
    original = charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 2, 1, tzinfo=UTC), 10, 1)
    with time_machine.travel(datetime(2026, 3, 2, 2, tzinfo=UTC), tick=False):
        ledger_correct(entry=original, prompt_tokens=-1, completion_tokens=0, cost_billing=Decimal(0), note="fix")
    page_for(client, monthly.student)  # and warm the per-process caches (site settings, limits)
    # Session, user, class, row count, days, quota counter, the page's rows, the nav's key
    # rights; and the class limits and site settings when their per-process caches expired.
    with django_assert_max_num_queries(10):
        assert page_for(client, None).status_code == 200
    for n in range(60):
        entry = charge(
            monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 3, 1, n % 60, tzinfo=UTC), 10, 1
        )
        if n % 10 == 0:
            with time_machine.travel(datetime(2026, 3, 3, 2, tzinfo=UTC), tick=False):
                ledger_correct(entry=entry, prompt_tokens=-1, completion_tokens=0, cost_billing=Decimal(0), note="fix")
    with django_assert_max_num_queries(10):
        response = page_for(client, None)
    assert response.status_code == 200
    assert len(ledger_rows(response.content.decode())) == 50


# --- The teachers' class usage page shows how each request came in ----------------------


def test_class_usage_splits_requests_by_entry_point(client: Client, monthly: People, fake_model: ChatModel) -> None:
    for when, user, entry_point in (
        (datetime(2026, 3, 3, 2, tzinfo=UTC), monthly.student, "chat"),
        (datetime(2026, 3, 3, 3, tzinfo=UTC), monthly.student, "api"),
        (datetime(2026, 3, 3, 4, tzinfo=UTC), monthly.student, "api"),
        (datetime(2026, 3, 3, 5, tzinfo=UTC), monthly.classmate, "chat"),
    ):
        charge(user, monthly.classroom, fake_model, when, 100, 10, entry_point=entry_point)
    charge(
        monthly.other_student,
        monthly.other_classroom,
        fake_model,
        datetime(2026, 3, 3, 2, tzinfo=UTC),
        1,
        1,
        entry_point="api",
    )
    usage_rollup(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 5, tzinfo=UTC))
    client.force_login(monthly.teacher)
    with time_machine.travel(MARCH_4, tick=False):
        html = client.get(
            reverse("class-usage", args=[monthly.classroom.pk]), HTTP_ACCEPT_LANGUAGE="en"
        ).content.decode()
    summary = html[html.index('id="entry-point-usage"') :]
    summary = summary[: summary.index("</table>")]
    assert cells(summary) == ["Chat", "2", "API", "2"]
    students = html[html.index('id="student-usage"') :]
    student_rows = {
        row[0].split()[-1]: row[1:4] for row in (cells(r) for r in re.findall(r"<tr>(.*?)</tr>", students, re.S)) if row
    }
    assert student_rows["xiaoming"] == ["3", "1", "2"]  # requests, chat, API
    assert student_rows["xiaohong"] == ["1", "1", "0"]


def test_class_usage_csv_has_each_rows_entry_point(client: Client, monthly: People, fake_model: ChatModel) -> None:
    charge(monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 3, 2, tzinfo=UTC), 100, 10)
    charge(
        monthly.student, monthly.classroom, fake_model, datetime(2026, 3, 3, 3, tzinfo=UTC), 100, 10, entry_point="api"
    )
    client.force_login(monthly.teacher)
    response = client.get(
        reverse("class-usage-csv", args=[monthly.classroom.pk]), {"start": "2026-03-03", "end": "2026-03-03"}
    )
    rows = list(csv.DictReader(io.StringIO(streamed(response).decode("utf-8-sig"))))
    assert [row["entry_point"] for row in rows] == ["chat", "api"]


def test_the_usage_pages_bar_is_red_when_the_quota_is_used_up_as_on_the_chat(
    people: People, fake_model: ChatModel, client: Client
) -> None:
    policy_set(people.classroom, period="month", student_token_limit=100)
    charge(people.student, people.classroom, fake_model, MARCH_4, 40, 20)
    assert 'class="meter-bar"' in page_for(client, people.student).content.decode()
    charge(people.student, people.classroom, fake_model, MARCH_4, 30, 10)
    assert 'class="meter-bar full"' in page_for(client, people.student).content.decode()
