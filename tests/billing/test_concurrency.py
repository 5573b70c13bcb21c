"""No quota is overspent by concurrency: real threads, each with its own database
connection, race for one student's budget (SQLite here; PostgreSQL when DATABASE_URL says)."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection
from django.db.models import Sum

from apps.billing.models import LedgerEntry, UsageCounter
from apps.billing.services import ReplyUsage, hold_settle, hold_take
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set
from tests.conftest import People
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db(transaction=True)
PARALLEL = 50


def race(people: People, model: ChatModel, *, prompt: int, max_tokens: int, used: tuple[int, int]) -> dict[str, int]:
    barrier = threading.Barrier(PARALLEL)
    outcome = {"ok": 0, "refused": 0, "error": 0}
    lock = threading.Lock()

    def one_request() -> None:
        request_id = uuid.uuid4().hex
        try:
            barrier.wait(timeout=30)
            hold_take(
                request_id=request_id,
                user=people.student,
                classroom=people.classroom,
                model=model,
                prompt_tokens=prompt,
                max_tokens=max_tokens,
            )
            hold_settle(
                request_id=request_id,
                usage=ReplyUsage(
                    prompt_tokens=used[0],
                    completion_tokens=used[1],
                    usage_source="provider",
                    estimated=False,
                    status="complete",
                    route_name=model.route_name,
                    provider_slug=model.provider.slug,
                    credential_id=None,
                    credential_scope="none",
                    first_chunk_ms=1,
                    total_ms=2,
                ),
            )
            key = "ok"
        except RequestRefused:
            key = "refused"
        except Exception:  # noqa: BLE001 - counted and asserted on below
            key = "error"
        finally:
            close_old_connections()
            connection.close()
        with lock:
            outcome[key] += 1

    threads = [threading.Thread(target=one_request) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcome


def test_fifty_parallel_requests_with_room_for_five_never_pass_the_token_limit(
    people: People, fake_model: ChatModel
) -> None:
    policy_set(people.classroom, student_token_limit=1_000)  # each request holds 200 tokens

    outcome = race(people, fake_model, prompt=100, max_tokens=100, used=(100, 100))

    assert outcome == {"ok": 5, "refused": 45, "error": 0}
    total = LedgerEntry.objects.filter(user=people.student).aggregate(t=Sum("prompt_tokens") + Sum("completion_tokens"))
    assert total["t"] == 1_000
    counter = UsageCounter.objects.get(scope_key=f"c{people.classroom.pk}:s{people.student.pk}")
    assert (counter.tokens_used, counter.tokens_held) == (1_000, 0)


def test_fifty_parallel_requests_never_pass_the_money_limit(people: People, fake_model: ChatModel) -> None:
    # 100 in + 100 out at 2 / 8 CNY per million = 0.001 CNY per request: room for 5.
    policy_set(people.classroom, student_cost_limit=Decimal("0.005"))

    outcome = race(people, fake_model, prompt=100, max_tokens=100, used=(100, 60))

    # Settled requests used less than they held, so a few more may fit; never more money.
    assert outcome["error"] == 0 and outcome["ok"] >= 5
    spent = LedgerEntry.objects.filter(user=people.student).aggregate(c=Sum("cost_billing"))["c"]
    assert spent <= Decimal("0.005")


def test_parallel_requests_of_one_student_against_a_class_pool_never_deadlock(
    people: People, fake_model: ChatModel
) -> None:
    """Each take and settle changes two rows, the student's and the pool's. On PostgreSQL a
    multi-row UPDATE locked them in the order it found them, which changes as rows are
    rewritten: two requests locked them in opposite orders and one died in a deadlock
    (a take refused with internal_error, or a settle released unbilled). The first round
    also starts the period: its counter rows are created by the racing requests, and an
    UPDATE that began before a row was committed did not see it (the budget looked full)."""
    policy_set(
        people.classroom,
        student_token_limit=10**9,
        class_token_pool=10**10,
        student_cost_limit=Decimal(1000),
        class_cost_pool=Decimal(10000),
    )
    for _round in range(3):
        outcome = race(people, fake_model, prompt=50, max_tokens=150, used=(50, 150))
        assert outcome == {"ok": PARALLEL, "refused": 0, "error": 0}
    counters = UsageCounter.objects.filter(scope_key__startswith=f"c{people.classroom.pk}:")
    assert {(c.tokens_used, c.tokens_held) for c in counters} == {(3 * PARALLEL * 200, 0)}
