"""The class usage page and CSV opened the way the UI links them: no query string means
the class's current quota period. The range's end holds for every table, and money in the
CSV is written as plain decimals."""

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

from apps.billing.services import usage_rollup
from apps.providers.models import ChatModel, ModelPrice
from apps.providers.selectors import price_cache_forget
from tests.billing.conftest import policy_set, settle, streamed, take
from tests.conftest import People

pytestmark = pytest.mark.django_db

MARCH_4 = datetime(2026, 3, 4, 4, 0, tzinfo=UTC)  # noon in Shanghai


@pytest.fixture
def teacher(people: People, client: Client) -> Client:
    client.force_login(people.teacher)
    return client


@pytest.fixture
def spent(people: People, fake_model: ChatModel) -> None:
    with time_machine.travel(datetime(2026, 2, 27, 2, 0, tzinfo=UTC), tick=False):
        # last month
        settle(take(people.student, people.classroom, fake_model, prompt=5000, max_tokens=5000), 5000, 5000)
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=UTC), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=500), 1000, 500)
    with time_machine.travel(datetime(2026, 3, 4, 2, 0, tzinfo=UTC), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=2000, max_tokens=1000), 2000, 1000)
    usage_rollup(since=datetime(2026, 2, 20, tzinfo=UTC), until=datetime(2026, 3, 6, tzinfo=UTC))


def shown_range(page: str) -> tuple[str, str]:
    start = re.search(r'name="start" value="([\d-]+)"', page)
    end = re.search(r'name="end" value="([\d-]+)"', page)
    assert start and end, "the range inputs show the dates used"
    return start.group(1), end.group(1)


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("month", ("2026-03-01", "2026-03-31")),
        ("week", ("2026-03-02", "2026-03-08")),
        ("day", ("2026-03-04", "2026-03-04")),
    ],
)
def test_usage_page_without_a_query_string_shows_the_current_quota_period(
    people: People, teacher: Client, spent: None, period: str, expected: tuple[str, str]
) -> None:
    policy_set(people.classroom, period=period)
    with time_machine.travel(MARCH_4, tick=False):
        response = teacher.get(reverse("class-usage", args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200
    assert shown_range(page) == expected
    assert "Export CSV" in page


def test_usage_page_uses_the_site_default_period_without_a_class_policy(people: People, teacher: Client) -> None:
    with time_machine.travel(MARCH_4, tick=False):
        response = teacher.get(reverse("class-usage", args=[people.classroom.pk]))
    assert response.status_code == 200
    assert shown_range(response.content.decode()) == ("2026-03-01", "2026-03-31")  # the site default: a month


def test_a_term_outside_its_dates_falls_back_to_the_last_30_days(people: People, teacher: Client) -> None:
    policy_set(people.classroom, period="term", term_start=date(2025, 9, 1), term_end=date(2026, 1, 15))
    with time_machine.travel(MARCH_4, tick=False):
        response = teacher.get(reverse("class-usage", args=[people.classroom.pk]))
    assert response.status_code == 200
    assert shown_range(response.content.decode()) == ("2026-02-03", "2026-03-04")


def test_a_term_longer_than_a_year_is_shown_up_to_the_longest_range_allowed(people: People, teacher: Client) -> None:
    policy_set(people.classroom, period="term", term_start=date(2025, 1, 1), term_end=date(2026, 12, 31))
    with time_machine.travel(MARCH_4, tick=False):
        response = teacher.get(reverse("class-usage", args=[people.classroom.pk]))
    assert response.status_code == 200
    assert shown_range(response.content.decode()) == ("2025-12-30", "2026-12-31")


def test_the_end_of_the_range_holds_for_models_and_students_too(people: People, teacher: Client, spent: None) -> None:
    page = teacher.get(
        reverse("class-usage", args=[people.classroom.pk]),
        {"start": "2026-03-03", "end": "2026-03-03"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    students = page[page.index('id="student-usage"') :]
    cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", students, re.S)]
    assert cells[4:7] == ["1000", "500", "0.0060 CNY"]  # xiaoming: 1000×2 + 500×8 per million: 3 March
    assert "0.018" not in page and "0.012" not in page  # 4 March (and both days together) are outside


def test_csv_without_a_query_string_is_the_current_period(people: People, teacher: Client, spent: None) -> None:
    policy_set(people.classroom, period="month")
    with time_machine.travel(MARCH_4, tick=False):
        response = teacher.get(reverse("class-usage-csv", args=[people.classroom.pk]))
    assert response.status_code == 200
    assert "usage-class%d-2026-03-01-2026-03-31.csv" % people.classroom.pk in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(streamed(response).decode("utf-8-sig"))))
    assert sorted(r["prompt_tokens"] for r in rows) == ["1000", "2000"]  # not February's


def test_csv_writes_zero_prices_and_costs_as_plain_decimals(
    people: People, teacher: Client, fake_model: ChatModel
) -> None:
    ModelPrice.objects.create(
        model=fake_model,
        input_per_million=Decimal(0),
        output_per_million=Decimal(0),
        currency="CNY",
        effective_from=datetime(2026, 3, 1, tzinfo=UTC),
    )
    price_cache_forget()
    with time_machine.travel(MARCH_4, tick=False):
        settle(take(people.student, people.classroom, fake_model), 100, 50)
    response = teacher.get(
        reverse("class-usage-csv", args=[people.classroom.pk]), {"start": "2026-03-04", "end": "2026-03-04"}
    )
    body = streamed(response).decode("utf-8-sig")
    (row,) = list(csv.DictReader(io.StringIO(body)))
    for column in ("price_input_per_million", "price_output_per_million", "cost", "cost_billing"):
        assert re.fullmatch(r"0(\.0+)?", row[column]), (column, row[column])
    assert Decimal(row["exchange_rate"]) == 1 and "E" not in row["exchange_rate"]
