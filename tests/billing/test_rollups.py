"""Rollups: SQL aggregation of the ledger per hour and day, idempotent, run by hand, by a
Celery task and by the embedded worker + beat that `make run` starts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from apps.billing.models import JobRun, UsageRollup
from apps.billing.services import usage_rollup
from apps.billing.tasks import rollup_usage
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People

ROOT = Path(__file__).resolve().parents[2]


def spend(
    people: People, model: ChatModel, at: datetime, student=None, prompt: int = 100, completion: int = 50
) -> None:  # type: ignore[no-untyped-def]
    with time_machine.travel(at, tick=False):
        settle(
            take(student or people.student, people.classroom, model, prompt=prompt, max_tokens=completion),
            prompt,
            completion,
        )


@pytest.fixture
def ledger(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom)
    # 09:10 and 09:40 Beijing on 3 March, 10:05 the same day, and one the next day.
    for hour, minute in ((1, 10), (1, 40), (2, 5)):
        spend(people, fake_model, datetime(2026, 3, 3, hour, minute, tzinfo=UTC))
    spend(
        people,
        fake_model,
        datetime(2026, 3, 3, 1, 20, tzinfo=UTC),
        student=people.classmate,
        prompt=1000,
        completion=1000,
    )
    spend(people, fake_model, datetime(2026, 3, 4, 3, 0, tzinfo=UTC))


def snapshot() -> list[tuple[object, ...]]:
    return sorted(
        UsageRollup.objects.values_list(
            "granularity",
            "bucket_start",
            "user_id",
            "classroom_id",
            "model_id",
            "requests",
            "prompt_tokens",
            "completion_tokens",
            "cost_billing",
        )
    )


@pytest.mark.django_db
def test_rollup_groups_by_hour_and_day_student_class_and_model(
    people: People, fake_model: ChatModel, ledger: None
) -> None:
    usage_rollup(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 5, tzinfo=UTC))
    day = UsageRollup.objects.get(
        granularity="day", user=people.student, bucket_start=datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    )  # 3 March, Beijing
    assert (day.requests, day.prompt_tokens, day.completion_tokens) == (3, 300, 150)
    assert day.cost_billing == Decimal("0.0018")  # 3 × (100 × 2 + 50 × 8) / 1e6
    hours = UsageRollup.objects.filter(granularity="hour", user=people.student).order_by("bucket_start")
    assert [(h.bucket_start.hour, h.requests) for h in hours] == [(1, 2), (2, 1), (3, 1)]
    assert UsageRollup.objects.get(granularity="day", user=people.classmate).prompt_tokens == 1000


@pytest.mark.django_db
def test_running_a_rollup_twice_gives_the_same_rows(ledger: None) -> None:
    window = {
        "since": datetime(2026, 3, 1, tzinfo=UTC),
        "until": datetime(2026, 3, 5, tzinfo=UTC),
    }
    usage_rollup(**window)
    first = snapshot()
    usage_rollup(**window)
    assert snapshot() == first and first


@pytest.mark.django_db(transaction=True)
def test_two_rollups_at_once_give_the_same_rows_as_one(ledger: None) -> None:
    """Beat and a manual rollup_usage (or a redelivered task) at the same moment: on
    PostgreSQL each deleted only the rows committed when its DELETE began, and both inserts
    stayed (the buckets counted twice, days four times)."""
    window = {"since": datetime(2026, 3, 1, tzinfo=UTC), "until": datetime(2026, 3, 5, tzinfo=UTC)}
    usage_rollup(**window)
    alone = snapshot()
    for _round in range(4):
        barrier = threading.Barrier(2)
        failures: list[BaseException] = []

        def rebuild(barrier: threading.Barrier = barrier, failures: list[BaseException] = failures) -> None:
            try:
                barrier.wait(timeout=10)
                usage_rollup(**window)
            except BaseException as exc:  # noqa: BLE001 - asserted on below
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=rebuild) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures and snapshot() == alone


@pytest.mark.django_db
def test_rollup_command_and_task(ledger: None) -> None:
    out = StringIO()
    with time_machine.travel(datetime(2026, 3, 5, tzinfo=UTC)):
        call_command("rollup_usage", "--since", "2026-03-01", stdout=out)
    assert "hourly rows" in out.getvalue()
    first = snapshot()
    with time_machine.travel(datetime(2026, 3, 5, tzinfo=UTC)):
        rollup_usage.apply(kwargs={"since": "2026-03-01T00:00:00+08:00"}).get()
    assert snapshot() == first
    assert JobRun.objects.get(name="rollup_usage").last_success_at is not None


@pytest.mark.django_db
def test_rollup_command_refuses_a_bad_date() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command("rollup_usage", "--since", "yesterday")


def database_url_for_subprocess() -> str:
    """The test database, as a URL another process can open."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD']}@" if db.get("PASSWORD") else f"{db['USER']}@"
    return f"postgres://{auth}{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_celery_worker_and_beat_run_the_rollup(people: People, fake_model: ChatModel, tmp_path: Path) -> None:
    """What `make run` starts (a worker with beat on the file broker, no Redis), and in
    production the same worker on Redis: beat schedules the rollup, the worker runs it."""
    policy_set(people.classroom)
    settle(take(people.student, people.classroom, fake_model), 10, 10)
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "ROLLUP_EVERY_SECONDS": "1",
        "CELERY_DATA_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "",
        "LOG_FORMAT": "plain",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webchat",
            "worker",
            "--beat",
            "--pool",
            "solo",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        # JobRun is written after both granularities: wait for it, not for the first row.
        while time.monotonic() < deadline and not JobRun.objects.filter(name="rollup_usage").exists():
            assert worker.poll() is None, worker.stdout.read().decode() if worker.stdout else ""
            time.sleep(0.5)
        assert UsageRollup.objects.filter(user=people.student, granularity="day").exists()
        assert JobRun.objects.filter(name="rollup_usage", last_success_at__isnull=False).exists()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=15)
    expected = "redis://" if django_settings.REDIS_URL else "filesystem://"
    assert django_settings.CELERY_BROKER_URL.startswith(expected)
