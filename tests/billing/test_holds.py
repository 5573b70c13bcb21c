"""Holds and settling: exact costs, refusals, idempotency, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone, translation

from apps.billing.models import ExchangeRate, Hold, LedgerEntry, SiteBillingSettings, StudentOverride, UsageCounter
from apps.billing.selectors import quota_status, site_billing_settings_forget
from apps.billing.services import holds_expire, ledger_correct
from apps.providers.models import ChatModel, ModelPrice
from apps.providers.selectors import price_cache_forget
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People
from webchat.errors import RequestRefused

pytestmark = pytest.mark.django_db


def test_settle_writes_one_ledger_row_at_the_models_price(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=10_000)
    request_id = take(people.student, people.classroom, fake_model, prompt=1200, max_tokens=800)

    entry = settle(request_id, 1000, 500)

    assert (entry.prompt_tokens, entry.completion_tokens, entry.total_tokens) == (1000, 500, 1500)
    # 1000 × 2 / 1e6 + 500 × 8 / 1e6 = 0.006 CNY
    assert entry.cost == Decimal("0.006") and entry.cost_billing == Decimal("0.006")
    assert (entry.price_input_per_million, entry.price_output_per_million) == (Decimal("2"), Decimal("8"))
    assert (entry.price_currency, entry.billing_currency, entry.exchange_rate) == ("CNY", "CNY", Decimal(1))
    assert (entry.user_id, entry.classroom_id, entry.status, entry.entry_point) == (
        people.student.pk,
        people.classroom.pk,
        "complete",
        "chat",
    )
    assert (entry.first_chunk_ms, entry.total_ms, entry.usage_source) == (120, 900, "provider")
    counter = UsageCounter.objects.get()
    assert (counter.tokens_used, counter.tokens_held) == (1500, 0)
    assert counter.cost_used_units == 6_000_000 and counter.cost_held_units == 0


def test_settling_twice_bills_once(people: People, fake_model: ChatModel) -> None:
    request_id = take(people.student, people.classroom, fake_model)
    first = settle(request_id, 100, 50)
    second = settle(request_id, 100, 50)
    assert first.pk == second.pk
    assert LedgerEntry.objects.count() == 1
    assert UsageCounter.objects.get().tokens_used == 150


def test_usage_beyond_the_hold_is_recorded_not_dropped(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=300)
    request_id = take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100)
    entry = settle(request_id, 100, 300)  # a provider overshooting max_tokens (within the plausible bound)
    assert entry.completion_tokens == 300 and entry.usage_review == ""
    assert UsageCounter.objects.get().tokens_used == 400
    with pytest.raises(RequestRefused):
        take(people.student, people.classroom, fake_model, prompt=1, max_tokens=1)


def test_quota_exceeded_says_when_it_resets_and_writes_nothing(
    people: People, fake_model: ChatModel, settings: Any
) -> None:
    settings.LANGUAGE_CODE = "en"
    policy_set(people.classroom, period="day", student_token_limit=500)
    with time_machine.travel(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), tick=False):
        take(people.student, people.classroom, fake_model, prompt=200, max_tokens=200)
        with pytest.raises(RequestRefused) as refused:
            take(people.student, people.classroom, fake_model, prompt=200, max_tokens=200)
    assert refused.value.code == "quota_exceeded"
    # Day periods follow the school's time zone (Asia/Shanghai): reset at local midnight.
    assert refused.value.reset_at == datetime(2026, 3, 11, 0, 0, tzinfo=timezone.get_current_timezone())
    assert "2026-03-11 00:00" in refused.value.message
    assert Hold.objects.count() == 1 and UsageCounter.objects.get().tokens_held == 400


def test_money_limit_and_class_pool(people: People, fake_model: ChatModel) -> None:
    # 100 in + 100 out at 2/8 CNY per million = 0.001 CNY per hold.
    policy_set(people.classroom, student_cost_limit=Decimal("0.0025"), class_token_pool=500)
    take(people.student, people.classroom, fake_model)
    take(people.student, people.classroom, fake_model)
    with pytest.raises(RequestRefused):  # the third would pass 0.0025 CNY
        take(people.student, people.classroom, fake_model)
    with pytest.raises(RequestRefused):  # the classmate has money left, but the pool has 100 tokens
        take(people.classmate, people.classroom, fake_model)
    take(people.classmate, people.classroom, fake_model, prompt=50, max_tokens=50)


def test_override_and_site_cap(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000)
    StudentOverride.objects.create(classroom=people.classroom, student=people.student, token_limit=5_000)
    SiteBillingSettings.objects.update_or_create(pk=1, defaults={"max_student_token_limit": 3_000})
    site_billing_settings_forget()
    take(people.student, people.classroom, fake_model, prompt=1_400, max_tokens=1_400)
    with pytest.raises(RequestRefused):  # the override says 5,000; the site caps it at 3,000
        take(people.student, people.classroom, fake_model, prompt=200, max_tokens=200)
    with pytest.raises(RequestRefused):
        take(people.classmate, people.classroom, fake_model, prompt=600, max_tokens=600)


def test_an_override_holds_in_a_class_on_the_site_defaults(people: People, fake_model: ChatModel) -> None:
    """The class never saved a quota of its own (it runs on the site's defaults): the
    teacher's override for one student still holds, at once. It was read only beside a
    saved class policy: the page said "Override saved" and the student went on spending."""
    from apps.billing.services import student_override_set

    student_override_set(classroom=people.classroom, student=people.student, token_limit=1_200, cost_limit=None)
    take(people.student, people.classroom, fake_model, prompt=500, max_tokens=500)
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, fake_model, prompt=300, max_tokens=300)
    assert refused.value.code == "quota_exceeded"
    assert quota_status(user=people.student, classroom=people.classroom).token_limit == 1_200
    take(people.classmate, people.classroom, fake_model, prompt=300, max_tokens=300)  # the site's default


def test_requests_per_minute_refuse_with_a_retry_after(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, rpm=2)
    with time_machine.travel(datetime(2026, 3, 10, 9, 0, 45, tzinfo=UTC), tick=False):
        take(people.student, people.classroom, fake_model)
        take(people.student, people.classroom, fake_model)
        with pytest.raises(RequestRefused) as refused:
            take(people.student, people.classroom, fake_model)
    assert (refused.value.code, refused.value.retry_after, refused.value.rate_limit) == ("rate_limited", 15, "requests")
    assert "请求太多" in str(refused.value.message)
    with time_machine.travel(datetime(2026, 3, 10, 9, 1, 1, tzinfo=UTC), tick=False):
        take(people.student, people.classroom, fake_model)


def test_tokens_per_minute(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, tpm=1_000)
    take(people.student, people.classroom, fake_model, prompt=400, max_tokens=400)
    with pytest.raises(RequestRefused) as refused, translation.override("en"):
        take(people.student, people.classroom, fake_model, prompt=200, max_tokens=200)
    assert (refused.value.code, refused.value.rate_limit) == ("rate_limited", "tokens")
    # It says which limit and by how much: not "too many requests" after one.
    message = str(refused.value.message)
    assert "1000 tokens" in message and "needs 400" in message and "200 are left" in message


@pytest.mark.parametrize("entry_point", ["api", "chat"])
def test_a_request_larger_than_a_minutes_tokens_is_refused_for_good_and_says_what_fits(
    people: People, fake_model: ChatModel, entry_point: str
) -> None:
    """Its hold (the question and the longest reply it may have) is more than any minute
    holds: "try again in N seconds" would be answered the same every minute."""
    policy_set(people.classroom, tpm=500)
    counters_before = list(UsageCounter.objects.values_list("scope_key", "tokens_held"))
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, fake_model, prompt=8, max_tokens=1024, entry_point=entry_point)
    assert (refused.value.code, refused.value.param, refused.value.retry_after) == (
        "request_too_large",
        "max_tokens",
        None,
    )
    if entry_point == "api":
        assert "max_tokens" in refused.value.message and "492" in refused.value.message  # what would fit
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, fake_model, prompt=600, max_tokens=10, entry_point=entry_point)
    assert (refused.value.code, refused.value.param) == ("request_too_large", "messages")
    assert "600" in refused.value.message
    assert not Hold.objects.exists()
    assert list(UsageCounter.objects.values_list("scope_key", "tokens_held")) == counters_before
    take(people.student, people.classroom, fake_model, prompt=8, max_tokens=492, entry_point=entry_point)  # fits


def test_term_outside_its_dates_has_no_quota(people: People, fake_model: ChatModel) -> None:
    policy_set(
        people.classroom,
        period="term",
        term_start=datetime(2026, 2, 20).date(),
        term_end=datetime(2026, 7, 10).date(),
        student_token_limit=10_000,
    )
    with time_machine.travel(datetime(2026, 5, 1, 2, 0, tzinfo=UTC)):
        take(people.student, people.classroom, fake_model)
    with time_machine.travel(datetime(2026, 8, 1, 2, 0, tzinfo=UTC)), pytest.raises(RequestRefused) as ended:
        take(people.student, people.classroom, fake_model)
    assert "2026-07-10" in ended.value.message and ended.value.reset_at is None  # waiting brings nothing back
    with time_machine.travel(datetime(2026, 2, 10, 2, 0, tzinfo=UTC)), pytest.raises(RequestRefused) as early:
        take(people.student, people.classroom, fake_model)
    assert "2026-02-20" in early.value.message  # when the quota comes, and how long to wait
    assert early.value.reset_at is not None and early.value.reset_at.date() == datetime(2026, 2, 20).date()


def test_price_in_force_when_the_request_started_is_billed(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom)  # no limits: this test is about prices
    request_id = take(people.student, people.classroom, fake_model, prompt=1_000_000, max_tokens=0)
    ModelPrice.objects.create(
        model=fake_model,
        input_per_million=Decimal("100"),
        output_per_million=Decimal("100"),
        currency="CNY",
        effective_from=timezone.now(),
    )
    price_cache_forget()  # what the admin's save does (other processes see it within seconds)
    entry = settle(request_id, 1_000_000, 0)
    assert entry.cost == Decimal("2") and entry.price_input_per_million == Decimal("2")
    later = settle(take(people.student, people.classroom, fake_model, prompt=1_000_000, max_tokens=0), 1_000_000, 0)
    assert later.cost == Decimal("100")


def test_usd_priced_model_is_billed_in_cny_at_the_admins_rate(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom)
    ModelPrice.objects.filter(model=fake_model).update(
        currency="USD", input_per_million=Decimal("0.15"), output_per_million=Decimal("0.60")
    )
    ExchangeRate.objects.create(
        from_currency="USD", to_currency="CNY", rate=Decimal("7.1"), effective_from=timezone.now() - timedelta(days=1)
    )
    entry = settle(
        take(people.student, people.classroom, fake_model, prompt=1_000_000, max_tokens=1_000_000), 1_000_000, 1_000_000
    )
    assert (entry.cost, entry.price_currency) == (Decimal("0.75"), "USD")
    assert (entry.cost_billing, entry.billing_currency, entry.exchange_rate) == (
        Decimal("5.325"),
        "CNY",
        Decimal("7.1"),
    )


def test_a_fallback_priced_in_another_currency_than_the_unpriced_held_model_is_converted(
    people: People, fake_model: ChatModel
) -> None:
    """The held model had no price (its rate: the billing currency's own, 1); the fallback
    that answered costs USD. It was billed at 1, seven times under."""
    policy_set(people.classroom)
    fallback = ChatModel.objects.create(
        provider=fake_model.provider, name="usd-model", display_name="USD", context_window=16000, max_output_tokens=2048
    )
    ModelPrice.objects.create(
        model=fallback,
        input_per_million=Decimal("10"),
        output_per_million=Decimal("30"),
        currency="USD",
        effective_from=datetime(2025, 1, 1, tzinfo=UTC),
    )
    ModelPrice.objects.filter(model=fake_model).delete()
    ExchangeRate.objects.create(
        from_currency="USD", to_currency="CNY", rate=Decimal("7.2"), effective_from=datetime(2024, 1, 1, tzinfo=UTC)
    )
    price_cache_forget()
    request_id = take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=1000)
    entry = settle(request_id, 1000, 1000, model=fallback)
    assert (entry.cost, entry.price_currency, entry.exchange_rate) == (Decimal("0.04"), "USD", Decimal("7.2"))
    assert (entry.cost_billing, entry.billing_currency) == (Decimal("0.288"), "CNY")


def test_the_hold_is_the_dearest_of_the_models_that_may_answer(people: People, fake_model: ChatModel) -> None:
    """A fallback may answer in the requested model's place (the first route failed, by
    chance or on purpose): the money held is what the dearest of them would cost, so a
    money quota is not overspent by the difference (it was, by 200 times)."""
    dear = ChatModel.objects.create(
        provider=fake_model.provider,
        name="dear-model",
        display_name="Dear",
        context_window=16000,
        max_output_tokens=2048,
    )
    ModelPrice.objects.create(
        model=dear,
        input_per_million=Decimal("500"),
        output_per_million=Decimal("2000"),
        currency="CNY",
        effective_from=datetime(2025, 1, 1, tzinfo=UTC),
    )
    price_cache_forget()
    policy_set(people.classroom, student_cost_limit=Decimal("1"))
    # At the requested model's price (2 / 8 CNY per million) 1,000 + 1,000 tokens hold 0.01 CNY;
    # at the fallback's, 2.5 CNY: more than the quota.
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=1000, fallback_model_ids=(dear.pk,))
    assert refused.value.code == "quota_exceeded"
    request_id = take(
        people.student, people.classroom, fake_model, prompt=100, max_tokens=300, fallback_model_ids=(dear.pk,)
    )
    hold = Hold.objects.get(request_id=request_id)
    assert hold.cost_units == 650_000_000  # (100 × 500 + 300 × 2000) / 1e6 = 0.65 CNY, in nano-units
    entry = settle(request_id, 100, 300, model=dear)
    assert entry.cost_billing == Decimal("0.65")
    assert quota_status(user=people.student, classroom=people.classroom).tokens_held == 0


def test_stale_holds_are_settled_for_the_counted_prompt_once(people: People, fake_model: ChatModel) -> None:
    with time_machine.travel(timezone.now() - timedelta(hours=1)):
        request_id = take(people.student, people.classroom, fake_model, prompt=300, max_tokens=700)
    fresh = take(people.student, people.classroom, fake_model)
    assert holds_expire() == 1
    assert holds_expire() == 0
    entry = LedgerEntry.objects.get(request_id=request_id)
    assert (entry.prompt_tokens, entry.completion_tokens, entry.status) == (300, 0, "interrupted")
    assert Hold.objects.get(request_id=request_id).status == "expired"
    assert Hold.objects.get(request_id=fresh).status == "active"
    # A settle arriving after expiry (the request was alive after all) bills nothing more.
    assert settle(request_id, 300, 200).pk == entry.pk
    assert LedgerEntry.objects.filter(request_id=request_id).count() == 1


def test_corrections_are_new_rows(people: People, fake_model: ChatModel) -> None:
    entry = settle(take(people.student, people.classroom, fake_model), 100, 100)
    fix = ledger_correct(
        entry=entry,
        prompt_tokens=0,
        completion_tokens=-50,
        cost_billing=Decimal("-0.0004"),
        note="provider credited a truncated reply",
    )
    entry.refresh_from_db()
    assert (entry.completion_tokens, fix.corrects_id, fix.kind) == (100, entry.pk, "correction")


def test_quota_status_for_the_meter(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom, student_token_limit=1_000, student_cost_limit=Decimal("1"))
    settle(take(people.student, people.classroom, fake_model), 100, 150)
    status = quota_status(user=people.student, classroom=people.classroom)
    assert (status.tokens_used, status.tokens_left, status.token_limit) == (250, 750, 1_000)
    assert status.cost_used == Decimal("0.0014") and status.currency == "CNY"
    assert status.percent_used == 25 and status.reset_at is not None


def test_a_turn_across_midnight_stays_in_the_day_it_was_held_in_and_no_day_is_overspent(
    people: People, fake_model: ChatModel
) -> None:
    """A reply counts in the period its hold was taken in: moving its usage into the next
    period at settle (tried once) let that period pass its limit, since requests there were
    admitted without it."""
    policy_set(people.classroom, period="day", student_token_limit=1000)
    before_midnight = datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    with time_machine.travel(before_midnight, tick=False):
        first = take(people.student, people.classroom, fake_model, prompt=100, max_tokens=800)
    with time_machine.travel(before_midnight + timedelta(seconds=2), tick=False):
        second = take(people.student, people.classroom, fake_model, prompt=100, max_tokens=800)
        settle(first, 100, 800)
        settle(second, 100, 800)
        today = quota_status(user=people.student, classroom=people.classroom)
        assert today.tokens_used == 900 <= today.token_limit
    with time_machine.travel(before_midnight, tick=False):
        assert quota_status(user=people.student, classroom=people.classroom).tokens_used == 900


def test_a_model_priced_in_a_currency_without_a_rate_is_refused_clearly(people: People, fake_model: ChatModel) -> None:
    """An admin deleted the only USD rate: every turn on a USD model was an internal error."""
    policy_set(people.classroom)
    ModelPrice.objects.filter(model=fake_model).update(currency="USD")
    ExchangeRate.objects.all().delete()
    price_cache_forget()
    with pytest.raises(RequestRefused) as refused:
        take(people.student, people.classroom, fake_model)
    assert refused.value.code == "model_unpriced" and "USD" in str(refused.value.message)
    assert not Hold.objects.exists()
