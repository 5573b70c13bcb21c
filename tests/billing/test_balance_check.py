"""The ledger balance check: usage counters and rollups set against the ledger, the result
in admin, on /healthz (a warning, never a 503) and in the log; by hand and from beat."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.billing.models import BalanceCheck, LedgerEntry, UsageCounter, UsageRollup
from apps.billing.services import hold_release, ledger_balance_check, ledger_correct, usage_rollup
from apps.billing.tasks import check_ledger_balance
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.billing.test_rollups import database_url_for_subprocess
from tests.conftest import People

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def books(people: People, fake_model: ChatModel) -> None:
    """A class with a pool, so requests draw on two budgets; a student without a class; a
    finished hour of settled requests (rolled up) and a correction; one request still running."""
    policy_set(people.classroom, student_token_limit=1_000_000, class_token_pool=5_000_000)
    with time_machine.travel(timezone.now() - timedelta(hours=3), tick=False):
        settle(take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=500), 1000, 500)
        entry = settle(take(people.classmate, people.classroom, fake_model, prompt=300, max_tokens=100), 300, 40)
        settle(take(people.admin, None, fake_model, prompt=20, max_tokens=100), 20, 10)
        ledger_correct(
            entry=entry,
            prompt_tokens=-100,
            completion_tokens=0,
            cost_billing=Decimal("-0.0002"),
            note="provider's bill said less",
        )
    take(people.student, people.classroom, fake_model, prompt=50, max_tokens=200)  # still running
    usage_rollup(since=timezone.now() - timedelta(days=1))


def execute(sql: str, params: list[object]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def tamper_with_counter(people: People, tokens: int = 500) -> str:
    """A raw UPDATE behind the billing services' back, as a bug or a hand in the database would."""
    key = f"c{people.classroom.pk}:s{people.student.pk}"
    execute(
        f"UPDATE {UsageCounter._meta.db_table} SET tokens_used = tokens_used + %s WHERE scope_key = %s", [tokens, key]
    )
    return key


@pytest.mark.django_db
def test_a_healthy_ledger_reports_nothing(people: People, books: None, client: Client) -> None:
    check = ledger_balance_check()
    assert check.difference_count == 0 and check.differences == []
    # Counters: the student's, the classmate's, the class pool, the admin's own; rollups: one
    # group per user and class in finished hours.
    assert check.budgets_checked >= 4 + 3
    assert client.get("/healthz").json()["ledger_balance"] == "ok"


@pytest.mark.django_db
def test_a_released_hold_is_no_difference(people: People, books: None, fake_model: ChatModel) -> None:
    """Settling failed and the hold was let go unbilled: no charge is expected for it."""
    hold_release(request_id=take(people.classmate, people.classroom, fake_model))
    assert ledger_balance_check().difference_count == 0


@pytest.mark.django_db
def test_a_tampered_counter_is_reported_in_admin_on_healthz_and_in_the_log(
    people: People, books: None, client: Client, caplog: Any
) -> None:
    key = tamper_with_counter(people)
    with caplog.at_level(logging.WARNING, logger="apps.billing.services"):
        check_ledger_balance.apply().get()

    check = BalanceCheck.objects.get()
    assert check.difference_count == 1
    [difference] = check.differences
    assert difference["where"] == "counter" and difference["budget"].startswith(key)
    assert difference["field"] == "tokens_used"
    assert int(difference["found"]) - int(difference["ledger"]) == 500
    assert any(key in record.getMessage() and "tokens_used" in record.getMessage() for record in caplog.records)
    assert any("1 differences" in record.getMessage() for record in caplog.records)

    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ledger_balance"] == "warning: 1 differences"
    assert response.json()["status"] == "ok"

    client.force_login(people.admin)
    page = client.get(reverse("admin:billing_balancecheck_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert key in page and "tokens_used" in page and "1 difference" in page
    detail = client.get(
        reverse("admin:billing_balancecheck_change", args=[check.pk]), HTTP_ACCEPT_LANGUAGE="en"
    ).content.decode()
    assert key in detail
    index = client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "found 1 difference between the ledger" in index


@pytest.mark.django_db
def test_the_admin_index_says_nothing_while_the_books_balance(people: People, books: None, client: Client) -> None:
    ledger_balance_check()
    client.force_login(people.admin)
    assert "ledger balance check" not in client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_held_amounts_out_of_step_with_the_running_requests_are_reported(people: People, books: None) -> None:
    execute(
        f"UPDATE {UsageCounter._meta.db_table} SET cost_held_units = cost_held_units + 1 WHERE scope_key = %s",
        [f"c{people.classroom.pk}:pool"],
    )
    check = ledger_balance_check()
    assert [(d["where"], d["field"]) for d in check.differences] == [("counter", "cost_held_units")]


@pytest.mark.django_db
def test_a_rollup_out_of_step_with_the_ledger_is_reported(people: People, books: None) -> None:
    execute(
        f"UPDATE {UsageRollup._meta.db_table} SET completion_tokens = completion_tokens + 7 "
        "WHERE granularity = 'hour' AND user_id = %s",
        [people.classmate.pk],
    )
    check = ledger_balance_check()
    assert [(d["where"], d["field"]) for d in check.differences] == [("rollup", "completion_tokens")]
    assert f"user {people.classmate.pk}" in check.differences[0]["budget"]


@pytest.mark.django_db
def test_a_charge_without_its_hold_is_reported(people: People, books: None) -> None:
    entry = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.CHARGE, user=people.admin).get()
    execute(f"UPDATE {LedgerEntry._meta.db_table} SET request_id = %s WHERE id = %s", ["made-up", entry.pk])
    check = ledger_balance_check()
    fields = {(d["where"], d["budget"], d["field"]) for d in check.differences}
    assert ("ledger", "request made-up", "hold") in fields  # and the admin's counter no longer adds up
    assert ("counter", f"u{people.admin.pk}", "tokens_used") in {(w, b.split()[0], f) for w, b, f in fields}


@pytest.mark.django_db
def test_the_task_runs_twice_safely(people: People, books: None) -> None:
    tamper_with_counter(people)
    books_before = (
        list(UsageCounter.objects.order_by("pk").values()),
        LedgerEntry.objects.count(),
        list(UsageRollup.objects.order_by("pk").values()),
    )
    first = check_ledger_balance.apply().get()
    second = check_ledger_balance.apply().get()
    assert first == second == 1
    assert [c.differences for c in BalanceCheck.objects.all()] == [BalanceCheck.objects.first().differences] * 2
    assert (
        list(UsageCounter.objects.order_by("pk").values()),
        LedgerEntry.objects.count(),
        list(UsageRollup.objects.order_by("pk").values()),
    ) == books_before


@pytest.mark.django_db
def test_old_runs_are_let_go(people: People, books: None) -> None:
    with time_machine.travel(timezone.now() - timedelta(days=100)):
        ledger_balance_check()
    ledger_balance_check()
    assert BalanceCheck.objects.count() == 1


def test_beat_runs_the_check_and_a_run_expires_before_the_next(settings: Any) -> None:
    from webchat.celery import app

    entry = app.conf.beat_schedule["ledger-balance"]
    assert entry["task"] == "billing.check_ledger_balance"
    assert 0 < entry["options"]["expires"] < entry["schedule"]


def run_command() -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "LOG_FORMAT": "plain"}
    return subprocess.run(
        [sys.executable, "manage.py", "check_ledger_balance"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_prints_the_differences_and_exits_1_only_when_there_are_some(people: People, books: None) -> None:
    balanced = run_command()
    assert balanced.returncode == 0, balanced.stdout + balanced.stderr
    assert "ledger balance: ok" in balanced.stdout

    key = tamper_with_counter(people, tokens=42)
    unbalanced = run_command()
    assert unbalanced.returncode == 1
    assert f"counter {key}" in unbalanced.stdout and "tokens_used" in unbalanced.stdout
    assert "1 differences" in unbalanced.stderr
    assert BalanceCheck.objects.count() == 2
