"""Writes for billing: taking and settling holds, the ledger, rollups.

The quota invariant: a hold is taken by one conditional UPDATE per budget whose affected-row
count decides (on SQLite, where select_for_update does nothing, and on PostgreSQL, which
re-checks the WHERE clause on the locked row), inside one transaction with the hold row.
So concurrent requests can never together hold more than a budget allows; settling moves
the hold to "used" and releases the rest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Trunc
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Classroom, Enrollment, User
from apps.accounts.selectors import classroom_has_student
from apps.providers.client import REPLY_OVERSHOOT_TOKENS
from apps.providers.models import ChatModel, ModelPrice
from apps.providers.selectors import model_price_at
from webchat.errors import ErrorCode, RequestRefused
from webchat.plainsql import insert

from . import counters
from .models import (
    MILLION,
    BalanceCheck,
    ExchangeRate,
    Hold,
    JobRun,
    LedgerEntry,
    Period,
    QuotaPolicy,
    RateCounter,
    SiteBillingSettings,
    StudentOverride,
    UsageCounter,
    UsageRollup,
    money_from_units,
    money_units,
)
from .selectors import (
    Limits,
    exchange_rate_at,
    ledger_balance,
    limits_for,
    limits_forget,
    period_bounds,
    site_billing_settings,
    site_billing_settings_forget,
)

logger = logging.getLogger(__name__)


def cost_of(
    *, price: ModelPrice | None, rate: Decimal, prompt_tokens: int, completion_tokens: int
) -> tuple[Decimal, Decimal]:
    """(cost in the model's currency, cost in the billing currency). Total = input + output."""
    if price is None:
        return Decimal(0), Decimal(0)
    cost = (
        Decimal(prompt_tokens) * price.input_per_million + Decimal(completion_tokens) * price.output_per_million
    ) / MILLION
    return cost, cost * rate


class _CountersUnseen(Exception):
    """A budget's counter row for this period does not exist yet (its first request), or
    (`keys` empty) exists but was created after the hold's statement began, which then did
    not see it: on PostgreSQL an UPDATE sees the rows committed before it started, so the
    first requests of a period, at the same moment, found their budgets "full"."""

    def __init__(self, keys: set[str], period_start: datetime) -> None:
        super().__init__(keys)
        self.keys = keys
        self.period_start = period_start


def _budgets_add(
    *, budgets: list[counters.Budget], period_start: datetime, tokens: int, units: int, again: bool
) -> bool:
    """Add a hold to all the budgets' counters at once, only where each has room. False when
    some budget has no room; the caller's transaction then rolls back the rest. `again`:
    this is the hold's second attempt, whose statement began after the rows existed."""
    if counters.budgets_add(period_start=period_start, budgets=budgets, tokens=tokens, units=units) == len(budgets):
        return True
    keys = {key for key, _limit, _cost in budgets}
    existing = set(
        UsageCounter.objects.filter(scope_key__in=keys, period_start=period_start).values_list("scope_key", flat=True)
    )
    if existing != keys or not again:
        raise _CountersUnseen(keys - existing, period_start)
    return False


def _rate_counter_create(*, scope_key: str, window_start: datetime) -> None:
    try:
        with transaction.atomic():
            RateCounter.objects.create(scope_key=scope_key, window_start=window_start)
    except IntegrityError:
        pass  # created by a concurrent request: fine


def _counters_create(missing: _CountersUnseen) -> None:
    for key in missing.keys:
        tokens, units = _carried(scope_key=key, period_start=missing.period_start)
        try:
            with transaction.atomic():
                UsageCounter.objects.create(
                    scope_key=key,
                    period_start=missing.period_start,
                    tokens_used=tokens,
                    cost_used_units=units,
                    tokens_carried=tokens,
                    cost_carried_units=units,
                )
        except IntegrityError:
            pass  # created by a concurrent request: fine


def _scope_filter(scope_key: str) -> Q:
    """The ledger rows of one budget: a user in no class (u7), a student in a class (c3:s7),
    a class's pool (c3:pool)."""
    if scope_key.startswith("u"):
        return Q(user_id=int(scope_key[1:]), classroom__isnull=True)
    classroom, _sep, who = scope_key[1:].partition(":")
    if who == "pool":
        return Q(classroom_id=int(classroom))
    return Q(classroom_id=int(classroom), user_id=int(who[1:]))


def _carried(*, scope_key: str, period_start: datetime) -> tuple[int, int]:
    """(tokens, money units) the ledger holds for this budget from requests made since the
    period began but counted under another period's row: the class's period changed. A
    request made before the period began (a reply running across midnight) stays its own
    period's, as its hold was; one counted under this very row is in it already."""
    scope = _scope_filter(scope_key)
    key = [scope_key, period_start.isoformat()]
    since = Hold.objects.filter(scope, created_at__gte=period_start)
    counted_here = {request_id for request_id, keys in since.values_list("request_id", "counter_keys") if key in keys}
    tokens = units = 0
    for request_id, prompt, completion, cost in (
        LedgerEntry.objects.filter(scope, kind=LedgerEntry.Kind.CHARGE, request_id__in=since.values("request_id"))
        .values_list("request_id", "prompt_tokens", "completion_tokens", "cost_billing")
        .iterator(chunk_size=2000)
    ):
        if request_id not in counted_here:
            tokens += prompt + completion
            units += money_units(cost) or 0
    return tokens, units


def _counters_carry_in(*, classroom: Classroom) -> None:
    """After the class's period changed, its budget rows for the period now running carry in
    what the ledger has for them since that period began: made now for its students and its
    pool (so the meters show it at once), or, for a period the class had before (back to
    months after some days), brought up to date. A row made later (a student who joins)
    carries it in as it is made (_counters_create)."""
    start = _period_start_now(classroom=classroom)
    if start is None:
        return
    students = Enrollment.objects.filter(classroom=classroom).values_list("student_id", flat=True)
    keys = {f"c{classroom.pk}:pool"} | {f"c{classroom.pk}:s{student}" for student in students}
    _budget_rows_carry_in(keys=keys, start=start)


def _classless_counters_carry_in() -> None:
    """_counters_carry_in for the people in no class, whose budgets run on the site's
    default period: everyone with a budget row, or a request since the period began."""
    start = _period_start_now(classroom=None)
    if start is None:
        return
    keys = set(UsageCounter.objects.filter(scope_key__startswith="u").values_list("scope_key", flat=True))
    keys |= {
        f"u{user_id}"
        for user_id in LedgerEntry.objects.filter(classroom__isnull=True, created_at__gte=start).values_list(
            "user_id", flat=True
        )
    }
    _budget_rows_carry_in(keys=keys, start=start)


def _period_start_now(*, classroom: Classroom | None) -> datetime | None:
    """When the class's (None: the site's default) current period began; None outside a term."""
    return period_bounds(limits=limits_for(user=User(pk=0), classroom=classroom), now=timezone.now())[0]


def _budget_rows_carry_in(*, keys: set[str], start: datetime) -> None:
    existing = list(UsageCounter.objects.filter(scope_key__in=keys, period_start=start))
    _counters_create(_CountersUnseen(keys - {counter.scope_key for counter in existing}, start))
    for counter in existing:
        tokens, units = _carried(scope_key=counter.scope_key, period_start=start)
        UsageCounter.objects.filter(pk=counter.pk).update(
            tokens_used=F("tokens_used") - F("tokens_carried") + tokens,
            cost_used_units=F("cost_used_units") - F("cost_carried_units") + units,
            tokens_carried=tokens,
            cost_carried_units=units,
        )


def _budgets(*, user: User, classroom: Classroom | None, limits: Limits) -> list[tuple[str, int | None, int | None]]:
    """(scope key, token limit, money limit in units) for every budget a request draws on."""
    if classroom is None:
        return [(f"u{user.pk}", limits.student_tokens, limits.student_cost_units)]
    budgets = [(f"c{classroom.pk}:s{user.pk}", limits.student_tokens, limits.student_cost_units)]
    if limits.pool_tokens is not None or limits.pool_cost_units is not None:
        budgets.append((f"c{classroom.pk}:pool", limits.pool_tokens, limits.pool_cost_units))
    return budgets


def _rate_take(
    *, user: User, limits: Limits, prompt_tokens: int, max_tokens: int, entry_point: str, now: datetime
) -> None:
    if limits.rpm is None and limits.tpm is None:
        return
    tokens = prompt_tokens + max_tokens
    if limits.tpm is not None and tokens > limits.tpm:
        # Not "try again in a minute": no minute has room for it.
        raise _too_large_for_a_minute(
            tpm=limits.tpm, prompt_tokens=prompt_tokens, max_tokens=max_tokens, entry_point=entry_point
        )
    key, window = f"u{user.pk}", now.replace(second=0, microsecond=0)
    taken = counters.rate_add(scope_key=key, window_start=window, tokens=tokens, rpm=limits.rpm, tpm=limits.tpm)
    if not taken:
        if not RateCounter.objects.filter(scope_key=key, window_start=window).exists():
            _rate_counter_create(scope_key=key, window_start=window)  # the minute's first request
        # Once more, also when the row exists: a concurrent request may have created it
        # after the first statement began (PostgreSQL's UPDATE did not see it).
        taken = counters.rate_add(scope_key=key, window_start=window, tokens=tokens, rpm=limits.rpm, tpm=limits.tpm)
    if not taken:
        raise _rate_refusal(scope_key=key, window_start=window, limits=limits, tokens=tokens, now=now)


def _rate_refusal(
    *, scope_key: str, window_start: datetime, limits: Limits, tokens: int, now: datetime
) -> RequestRefused:
    """Which of the minute's limits refused the request, in words: its requests, or its
    tokens (then how many this one needs and how many are left)."""
    retry_after = max(60 - now.second, 1)
    minute = RateCounter.objects.filter(scope_key=scope_key, window_start=window_start).first()
    if limits.tpm is not None and (limits.rpm is None or minute is None or minute.requests < limits.rpm):
        used = minute.tokens if minute is not None else 0
        values = {"tokens": tokens, "left": max(limits.tpm - used, 0), "limit": limits.tpm, "seconds": retry_after}
        message = _(
            "This minute's limit of %(limit)d tokens is nearly used: this request needs %(tokens)d "
            "(the question and room for the reply) and %(left)d are left. Try again in %(seconds)d seconds."
        )
        return RequestRefused(
            ErrorCode.RATE_LIMITED, str(message % values), retry_after=retry_after, rate_limit="tokens"
        )
    return RequestRefused(
        ErrorCode.RATE_LIMITED,
        str(_("Too many requests this minute. Try again in %(seconds)d seconds.") % {"seconds": retry_after}),
        retry_after=retry_after,
        rate_limit="requests",
    )


def _fallback_units(*, model_id: int, currency: str, prompt_tokens: int, max_tokens: int, now: datetime) -> int:
    """What the request would cost if a fallback model answered it (0: it has no price, or
    no exchange rate into the billing currency, so settling could not bill it more)."""
    price = model_price_at(model_id=model_id, when=now)
    if price is None:
        return 0
    try:
        rate = exchange_rate_at(from_currency=price.currency, to_currency=currency, when=now)
    except ExchangeRate.DoesNotExist:
        return 0
    return money_units(cost_of(price=price, rate=rate, prompt_tokens=prompt_tokens, completion_tokens=max_tokens)[1])


def _outside_the_term(*, limits: Limits, now: datetime) -> RequestRefused:
    """A class counted by term, asked outside its dates: before it begins the quota comes
    back on its first day (said, and the time to wait); after it ends, not by waiting."""
    tz = timezone.get_current_timezone()
    if limits.term_start is not None and timezone.localdate(now, tz) < limits.term_start:
        begins = datetime.combine(limits.term_start, datetime.min.time(), tzinfo=tz)
        return RequestRefused(
            ErrorCode.QUOTA_EXCEEDED,
            str(_("The class term begins on %(date)s; there is no quota before then.") % {"date": limits.term_start}),
            reset_at=begins,
        )
    if limits.term_end is not None:
        return RequestRefused(
            ErrorCode.QUOTA_EXCEEDED,
            str(
                _("The class term ended on %(date)s, so there is no quota now. Ask your teacher.")
                % {"date": limits.term_end}
            ),
        )
    return RequestRefused(ErrorCode.QUOTA_EXCEEDED, str(_("The class term is not running, so there is no quota now.")))


def _too_large_for_a_minute(*, tpm: int, prompt_tokens: int, max_tokens: int, entry_point: str) -> RequestRefused:
    """A request whose hold (the question and the longest reply it may have) is more than
    the tokens a minute the student may use: the same request is refused every minute, so
    it says what would fit instead."""
    values = {"tokens": prompt_tokens + max_tokens, "prompt": prompt_tokens, "reply": max_tokens, "limit": tpm}
    api = entry_point == LedgerEntry.EntryPoint.API
    if prompt_tokens >= tpm:
        message = (
            _(
                "The messages alone are %(prompt)d tokens, more than the %(limit)d tokens a minute you may use, "
                "so this request can never run. Send shorter messages, or ask your teacher for a higher limit."
            )
            if api
            else _(
                "This conversation is %(prompt)d tokens, more than the %(limit)d tokens a minute your class "
                "allows. Start a new conversation, or ask your teacher for a higher limit."
            )
        )
        return RequestRefused(ErrorCode.REQUEST_TOO_LARGE, str(message % values), param="messages")
    values["fits"] = tpm - prompt_tokens
    message = (
        _(
            "This request could use %(tokens)d tokens (%(prompt)d to read, up to %(reply)d to write), more than "
            "the %(limit)d tokens a minute you may use, so it can never run. Set max_tokens to at most %(fits)d."
        )
        if api
        else _(
            "This message could use %(tokens)d tokens (%(prompt)d to read, up to %(reply)d to write), more than "
            "the %(limit)d tokens a minute your class allows. Tell your teacher."
        )
    )
    return RequestRefused(ErrorCode.REQUEST_TOO_LARGE, str(message % values), param="max_tokens")


def _money_text(units: int) -> str:
    """An amount in nano-units as the meter writes it: up to four places, no trailing zeros."""
    return f"{money_from_units(units):f}".rstrip("0").rstrip(".") or "0"


MIN_USEFUL_REPLY_TOKENS = 16  # below this a smaller max_tokens is no advice worth giving


def _room_left(
    *,
    budgets: list[counters.Budget],
    rows: dict[str, UsageCounter],
    prompt_tokens: int,
    max_tokens: int,
    units: int,
    prompt_units: int,
) -> tuple[int, bool]:
    """Over every budget: the most tokens a reply to this question could be held for now
    (negative: not even the question fits), and whether the question alone takes all that
    is left of a budget that still has some (a shorter conversation would fit; an empty
    budget is no such case)."""
    room, too_long = max_tokens, False
    for key, token_limit, cost_limit in budgets:
        row = rows.get(key)
        if token_limit is not None:
            left = max(token_limit - (row.tokens_used + row.tokens_held if row else 0), 0)
            room = min(room, left - prompt_tokens)
            too_long |= 0 < left <= prompt_tokens
        if cost_limit is not None:
            left_units = max(cost_limit - (row.cost_used_units + row.cost_held_units if row else 0), 0)
            # In tokens, at what a reply's tokens cost in this hold.
            room = min(room, (left_units - prompt_units) * max_tokens // max(units - prompt_units, 1))
            too_long |= 0 < left_units <= prompt_units
    return room, too_long


def _quota_refusal_message(
    *,
    budgets: list[counters.Budget],
    period_start: datetime,
    reset_at: datetime,
    prompt_tokens: int,
    max_tokens: int,
    units: int,
    prompt_units: int,
    currency: str,
    entry_point: str,
) -> str:
    """Why a hold did not fit, in the student's terms: the hold is the question plus the
    longest reply allowed, which is more than the meter's "used" suggests. Names the first
    budget without room (the student's own before the class pool), the tokens or money left
    there, what running replies hold, when it resets, what would fit now (a new
    conversation in the chat, a smaller max_tokens over the API) and where to see the
    details."""
    rows = {
        row.scope_key: row
        for row in UsageCounter.objects.filter(
            scope_key__in=[key for key, _t, _c in budgets], period_start=period_start
        )
    }
    tokens = prompt_tokens + max_tokens
    values: dict[str, object] = {
        "when": timezone.localtime(reset_at).strftime("%Y-%m-%d %H:%M"),
        "url": reverse("my-usage"),
        "currency": currency,
    }
    reason = ""
    held_text = ""
    for key, token_limit, cost_limit in budgets:
        row = rows.get(key)
        used, held = (row.tokens_used, row.tokens_held) if row else (0, 0)
        used_units, held_units = (row.cost_used_units, row.cost_held_units) if row else (0, 0)
        pool = key.endswith(":pool")
        if token_limit is not None and used + held + tokens > token_limit:
            left = max(token_limit - used - held, 0)
            values |= {"reply": max_tokens, "prompt": prompt_tokens, "left": left, "held": held}
            if pool:
                reason = _(
                    "A reply can be up to %(reply)s tokens and this question is about %(prompt)s; "
                    "your class's shared pool has %(left)s tokens left this period (resets at %(when)s)."
                )
            else:
                reason = _(
                    "A reply can be up to %(reply)s tokens and this question is about %(prompt)s; "
                    "you have %(left)s tokens left this period (resets at %(when)s)."
                )
                if held:
                    held_text = _(
                        "%(held)s of them are held by replies still being written; what those do not use comes back."
                    )
            break
        if cost_limit is not None and used_units + held_units + units > cost_limit:
            values |= {
                "reply": _money_text(units - prompt_units),
                "prompt": _money_text(prompt_units),
                "left": _money_text(max(cost_limit - used_units - held_units, 0)),
                "held": _money_text(held_units),
            }
            if pool:
                reason = _(
                    "A reply can cost up to %(reply)s %(currency)s and this question about %(prompt)s %(currency)s; "
                    "your class's shared pool has %(left)s %(currency)s left this period (resets at %(when)s)."
                )
            else:
                reason = _(
                    "A reply can cost up to %(reply)s %(currency)s and this question about %(prompt)s %(currency)s; "
                    "you have %(left)s %(currency)s left this period (resets at %(when)s)."
                )
                if held_units:
                    held_text = _(
                        "%(held)s %(currency)s of it is held by replies still being written; "
                        "what those do not use comes back."
                    )
            break
    else:  # the counters moved between the refused UPDATE and this read
        reason = _("Your quota for this period is used up. It resets on %(when)s.")
    parts = [str(reason) % values]
    if held_text:
        parts.append(str(held_text) % values)
    room, too_long = _room_left(
        budgets=budgets,
        rows=rows,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        units=units,
        prompt_units=prompt_units,
    )
    if entry_point == "api":
        # The caller chooses max_tokens (the chat does not): say what would fit.
        if MIN_USEFUL_REPLY_TOKENS <= room < max_tokens:
            parts.append(str(_("A smaller max_tokens (up to %(room)s) fits now.")) % {"room": room})
        elif too_long:
            parts.append(str(_("These messages alone are longer than what is left.")))
        parts.append(str(_("Details: your usage page on this site (%(url)s).")) % values)
        return " ".join(parts)
    if too_long:
        parts.append(str(_("This conversation alone is longer than what is left: a new conversation starts smaller.")))
    parts.append(str(_("Details: %(url)s")) % values)
    return " ".join(parts)


def hold_take(
    *,
    request_id: str,
    user: User,
    classroom: Classroom | None,
    model: ChatModel,
    prompt_tokens: int,
    max_tokens: int,
    entry_point: str = "chat",
    now: datetime | None = None,
    fallback_model_ids: tuple[int, ...] = (),
) -> Hold:
    """Reserve the most this request can cost: the counted prompt plus max_tokens of reply, at
    the model's current price, or at a fallback's (`fallback_model_ids`: the models that may
    answer, the requested one among them or not) when that costs more. Taken for every request, large balance or not.

    Side effects: RateCounter and UsageCounter rows updated (created on a period's first
    request), one Hold row. Raises RequestRefused (quota_exceeded or rate_limited; nothing
    written) when a limit would be passed.
    """
    arguments = {
        "request_id": request_id,
        "user": user,
        "classroom": classroom,
        "model": model,
        "prompt_tokens": prompt_tokens,
        "max_tokens": max_tokens,
        "entry_point": entry_point,
        "now": now or timezone.now(),
        "fallback_model_ids": fallback_model_ids,
    }
    try:
        return _hold_take(**arguments, again=False)
    except _CountersUnseen as unseen:
        _counters_create(unseen)  # outside the rolled-back attempt, then once more
        return _hold_take(**arguments, again=True)


@transaction.atomic
def _hold_take(
    *,
    request_id: str,
    user: User,
    classroom: Classroom | None,
    model: ChatModel,
    prompt_tokens: int,
    max_tokens: int,
    entry_point: str,
    now: datetime,
    again: bool,
    fallback_model_ids: tuple[int, ...] = (),
) -> Hold:
    site = site_billing_settings()
    limits = limits_for(user=user, classroom=classroom, site=site)
    start, reset_at = period_bounds(limits=limits, now=now)
    if start is None:
        raise _outside_the_term(limits=limits, now=now)
    price = model_price_at(model_id=model.pk, when=now)
    currency = site.billing_currency
    try:
        rate = exchange_rate_at(from_currency=price.currency if price else currency, to_currency=currency, when=now)
    except ExchangeRate.DoesNotExist as missing:
        logger.error("%s cannot be billed: %s", model, missing)
        raise RequestRefused(
            ErrorCode.MODEL_UNPRICED,
            str(
                _(
                    "This model is priced in %(currency)s, and the site has no exchange rate for it yet. Tell your teacher."
                )
                % {"currency": price.currency if price else currency}
            ),
        ) from None
    tokens = prompt_tokens + max_tokens
    _cost, cost_billing = cost_of(price=price, rate=rate, prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
    units = max(
        [money_units(cost_billing)]
        + [
            _fallback_units(
                model_id=model_id, currency=currency, prompt_tokens=prompt_tokens, max_tokens=max_tokens, now=now
            )
            for model_id in fallback_model_ids
            if model_id != model.pk
        ]
    )

    _rate_take(
        user=user, limits=limits, prompt_tokens=prompt_tokens, max_tokens=max_tokens, entry_point=entry_point, now=now
    )
    budgets = _budgets(user=user, classroom=classroom, limits=limits)
    # The one statement that decides: it adds the hold to every budget that has room for
    # it; unless all of them had, the transaction (and so the whole hold) is rolled back.
    keys = [scope_key for scope_key, _limit, _cost in budgets]
    if not _budgets_add(budgets=budgets, period_start=start, tokens=tokens, units=units, again=again):
        raise RequestRefused(
            ErrorCode.QUOTA_EXCEEDED,
            _quota_refusal_message(
                budgets=budgets,
                period_start=start,
                reset_at=reset_at,
                prompt_tokens=prompt_tokens,
                max_tokens=max_tokens,
                units=units,
                prompt_units=money_units(
                    cost_of(price=price, rate=rate, prompt_tokens=prompt_tokens, completion_tokens=0)[1]
                ),
                currency=currency,
                entry_point=entry_point,
            ),
            reset_at=reset_at,
        )
    # Every turn writes one: plain SQL (webchat/plainsql.py).
    hold = Hold(
        request_id=request_id,
        user=user,
        classroom=classroom,
        model=model,
        price=price,
        exchange_rate=rate,
        billing_currency=currency,
        prompt_tokens=prompt_tokens,
        tokens=tokens,
        cost_units=units,
        counter_keys=[[key, start.isoformat()] for key in keys],
        entry_point=entry_point,
        created_at=now,
    )
    return insert(hold)


def _settle_counters(hold: Hold, *, used_tokens: int, used_units: int) -> None:
    """Release a hold from its counters (all in one period), adding what was really used."""
    if hold.counter_keys:
        counters.budgets_settle(
            period_start=datetime.fromisoformat(hold.counter_keys[0][1]),
            keys=[key for key, _start in hold.counter_keys],
            held_tokens=hold.tokens,
            held_units=hold.cost_units,
            used_tokens=used_tokens,
            used_units=used_units,
        )


# Bounds on the usage one request can plausibly have had, from what its hold knows: our count
# of the prompt (providers frame messages differently and some add a short hidden system
# prompt) and the max_tokens asked for (a provider may overshoot it by a little). A reported
# count past them is not a real one (10^13 prompt tokens were once reported for a short
# question): it is billed at the bound and flagged for review.
# Never below our own count of the reply that arrived, though: that text was delivered (the
# stream is cut past what max_tokens could make, providers.client.reply_bytes_cap).
PROMPT_BOUND_FACTOR = 2
PROMPT_BOUND_MARGIN = 256
COMPLETION_BOUND_MARGIN = REPLY_OVERSHOOT_TOKENS


@dataclass(frozen=True)
class ReconciledUsage:
    prompt_tokens: int
    completion_tokens: int
    usage_source: str
    usage_review: str


def usage_reconcile(
    *,
    reported_prompt: int | None,
    reported_completion: int | None,
    counted_prompt: int,
    counted_completion: int,
    estimated: bool,
) -> ReconciledUsage:
    """What to bill when a provider reported usage, checked against our own counts of the
    prompt and of the reply text that arrived (`estimated`: counted with the closest public
    tokenizer, not the model's own). A count that is missing or not a whole number (None
    here) or that is below ours is replaced by ours, labelled `counted`, and flagged.

    "Below ours" leaves room for tokenizers: another vendor's may need about half the tokens
    of our estimate, and the prompt's per-message framing is approximate for every model. But
    text that arrived always costs at least one token. Absurdly large counts are bounded in
    hold_settle, which knows the hold. Side effects: none but a warning in the log."""
    review = ""
    prompt_floor = counted_prompt // 2
    completion_floor = max(1 if counted_completion else 0, counted_completion // 2 if estimated else counted_completion)
    if reported_prompt is None or reported_completion is None:
        review = LedgerEntry.UsageReview.MALFORMED
    elif reported_prompt < prompt_floor or reported_completion < completion_floor:
        review = LedgerEntry.UsageReview.UNDER_REPORTED
    prompt = reported_prompt if reported_prompt is not None and reported_prompt >= prompt_floor else counted_prompt
    completion = (
        reported_completion
        if reported_completion is not None and reported_completion >= completion_floor
        else counted_completion
    )
    if review:
        logger.warning(
            "provider usage %s: reported %s prompt / %s completion tokens, counted %d / %d; billed %d / %d",
            review,
            reported_prompt,
            reported_completion,
            counted_prompt,
            counted_completion,
            prompt,
            completion,
        )
    source = LedgerEntry.UsageSource.COUNTED if review else LedgerEntry.UsageSource.PROVIDER
    return ReconciledUsage(prompt_tokens=prompt, completion_tokens=completion, usage_source=source, usage_review=review)


def _usage_bounded(
    *, hold: Hold, prompt_tokens: object, completion_tokens: object, counted_completion: int = 0
) -> tuple[int, int]:
    """The usage within [0, bound] (see PROMPT_BOUND_FACTOR). Whatever arrives here (a
    negative, 2**63, not an int at all) becomes a number the ledger and the counters can hold:
    settling must not fail on a provider's numbers."""
    max_tokens = max(hold.tokens - hold.prompt_tokens, 0)
    bounds = (
        hold.prompt_tokens * PROMPT_BOUND_FACTOR + PROMPT_BOUND_MARGIN,
        max(max_tokens + COMPLETION_BOUND_MARGIN, counted_completion),
    )
    values = []
    for value, bound in zip((prompt_tokens, completion_tokens), bounds, strict=True):
        number = value if isinstance(value, int) and not isinstance(value, bool) else 0
        values.append(min(max(number, 0), bound))
    return values[0], values[1]


@dataclass(frozen=True)
class ReplyUsage:
    """What a request really used and how it ended, for its ledger row."""

    prompt_tokens: int
    completion_tokens: int
    usage_source: str
    estimated: bool
    status: str
    route_name: str
    provider_slug: str
    credential_id: int | None
    credential_scope: str
    first_chunk_ms: int | None
    total_ms: int | None
    model_id: int | None = None  # the model actually used (after failover); default: the hold's
    usage_review: str = ""  # set by usage_reconcile when the provider's counts were not used
    counted_completion_tokens: int = 0  # our own count of the reply that arrived: billed at least


# Its own transaction when called alone; inside a caller's (turn_finish keeps a savepoint
# around it) no savepoint of its own: one fewer round trip on every turn.
@transaction.atomic(savepoint=False)
def hold_settle(*, request_id: str, usage: ReplyUsage, now: datetime | None = None) -> LedgerEntry:
    """Turn a hold into the request's ledger row, at the price in force when it started.

    Side effects: the Hold marked settled, its counters moved from held to used (the real
    amount, even beyond the hold: recorded, never dropped), one LedgerEntry. Usage past the
    plausible bounds is billed at the bound, flagged `clamped` and logged. Idempotent by
    request id: settling again returns the existing row and changes nothing.
    """
    now = now or timezone.now()
    # Claim the hold: only the first settle (or expiry) to flip it writes anything.
    hold = counters.hold_claim(request_id=request_id, settled_at=now)
    if hold is None:
        # Settled (or expired) already: that settle wrote the request's one charge.
        return LedgerEntry.objects.get(request_id=request_id, kind=LedgerEntry.Kind.CHARGE)
    prompt_tokens, completion_tokens = _usage_bounded(
        hold=hold,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        counted_completion=usage.counted_completion_tokens,
    )
    review = usage.usage_review
    if (prompt_tokens, completion_tokens) != (usage.prompt_tokens, usage.completion_tokens):
        review = LedgerEntry.UsageReview.CLAMPED
        logger.warning(
            "usage of %s clamped: reported %r prompt / %r completion tokens, billed %d / %d",
            request_id,
            usage.prompt_tokens,
            usage.completion_tokens,
            prompt_tokens,
            completion_tokens,
        )
    model_id = usage.model_id or hold.model_id
    price = model_price_at(model_id=model_id, when=hold.created_at)
    hold_price = price if model_id == hold.model_id else model_price_at(model_id=hold.model_id, when=hold.created_at)
    rate = hold.exchange_rate
    # The hold's rate converts the held model's currency (the billing currency itself when
    # it had no price): a fallback priced in another currency needs its own.
    held_currency = hold_price.currency if hold_price is not None else hold.billing_currency
    if price is not None and price.currency != held_currency:
        rate = exchange_rate_at(from_currency=price.currency, to_currency=hold.billing_currency, when=hold.created_at)
    cost, cost_billing = cost_of(
        price=price, rate=rate, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
    )
    _settle_counters(hold, used_tokens=prompt_tokens + completion_tokens, used_units=money_units(cost_billing))
    # Every turn writes one: plain SQL (webchat/plainsql.py).
    entry = LedgerEntry(
        request_id=request_id,
        kind=LedgerEntry.Kind.CHARGE,
        user_id=hold.user_id,
        classroom_id=hold.classroom_id,
        credential_id=usage.credential_id,
        credential_scope=usage.credential_scope,
        provider_slug=usage.provider_slug,
        model_id=model_id,
        route_name=usage.route_name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        usage_source=usage.usage_source,
        estimated=usage.estimated,
        usage_review=review,
        status=usage.status,
        price_input_per_million=price.input_per_million if price else Decimal(0),
        price_output_per_million=price.output_per_million if price else Decimal(0),
        price_currency=price.currency if price else hold.billing_currency,
        price_effective_from=price.effective_from if price else None,
        cost=cost,
        exchange_rate=rate,
        billing_currency=hold.billing_currency,
        cost_billing=cost_billing,
        first_chunk_ms=usage.first_chunk_ms,
        total_ms=usage.total_ms,
        entry_point=hold.entry_point,
        started_at=hold.created_at,
        created_at=now,
    )
    return insert(entry)


@transaction.atomic
def hold_release(*, request_id: str, now: datetime | None = None) -> Hold | None:
    """Let a hold go unbilled, because settling it failed for an unexpected reason: the
    student's quota must not stay blocked until the hold expires, and the failure must not
    cost them. Side effects: the Hold marked released, its amounts taken off its counters
    (nothing added as used). No ledger row; the caller flags the reply `unsettled`. None
    when the hold was already settled, expired or released."""
    hold = counters.hold_claim(request_id=request_id, settled_at=now or timezone.now(), status=Hold.Status.RELEASED)
    if hold is not None:
        _settle_counters(hold, used_tokens=0, used_units=0)
    return hold


def holds_expire(*, now: datetime | None = None) -> int:
    """Settle holds whose request died without settling (a crashed worker): billed for the
    counted prompt, as the provider may have read it. Safe to run twice: each hold is
    claimed by hold_settle's conditional update. Returns how many were settled."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.HOLD_EXPIRY_SECONDS)
    settled = 0
    for hold in Hold.objects.filter(status=Hold.Status.ACTIVE, created_at__lt=cutoff).select_related("model__provider"):
        hold_settle(
            request_id=hold.request_id,
            now=now,
            usage=ReplyUsage(
                prompt_tokens=hold.prompt_tokens,
                completion_tokens=0,
                usage_source=LedgerEntry.UsageSource.COUNTED,
                estimated=True,
                status=LedgerEntry.Status.INTERRUPTED,
                route_name=f"{hold.model.provider.slug}/{hold.model.name}",
                provider_slug=hold.model.provider.slug,
                credential_id=None,
                credential_scope="",
                first_chunk_ms=None,
                total_ms=None,
            ),
        )
        # Labelled expired only if this call's settle claimed it (its settled_at is `now`):
        # the turn may have settled itself a moment before, and stays settled.
        settled += Hold.objects.filter(pk=hold.pk, status=Hold.Status.SETTLED, settled_at=now).update(
            status=Hold.Status.EXPIRED
        )
    return settled


def ledger_correct(
    *, entry: LedgerEntry, prompt_tokens: int, completion_tokens: int, cost_billing: Decimal, note: str
) -> LedgerEntry:
    """A correction is a new row holding the difference; the original stays as it was."""
    return LedgerEntry.objects.create(
        request_id=f"{entry.request_id}:fix:{int(time.time() * 1000)}",
        kind=LedgerEntry.Kind.CORRECTION,
        corrects=entry,
        note=note[:200],
        user_id=entry.user_id,
        classroom_id=entry.classroom_id,
        credential_id=entry.credential_id,
        credential_scope=entry.credential_scope,
        provider_slug=entry.provider_slug,
        model_id=entry.model_id,
        route_name=entry.route_name,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        usage_source=entry.usage_source,
        estimated=entry.estimated,
        status=entry.status,
        price_input_per_million=entry.price_input_per_million,
        price_output_per_million=entry.price_output_per_million,
        price_currency=entry.price_currency,
        price_effective_from=entry.price_effective_from,
        cost=cost_billing / entry.exchange_rate,
        exchange_rate=entry.exchange_rate,
        billing_currency=entry.billing_currency,
        cost_billing=cost_billing,
        entry_point=entry.entry_point,
        started_at=entry.started_at,
        created_at=timezone.now(),
    )


def _floor(moment: datetime, granularity: str) -> datetime:
    local = timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)
    if granularity == UsageRollup.Granularity.DAY:
        local = local.replace(hour=0)
    return local


def usage_rollup(*, since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Rebuild the hourly and daily rollups for every bucket from `since` (floored to its
    day) to `until` (now), by SQL aggregation over the ledger: hours from the ledger, days
    from the hours. Each granularity is replaced in one transaction, so running it twice
    gives the same rows. Side effects: UsageRollup rows, JobRun. Returns rows written."""
    started = time.monotonic()
    until = until or timezone.now()
    start = _floor(since, UsageRollup.Granularity.DAY)
    if connection.vendor == "postgresql":
        written = counters.rollup_rebuild_postgresql(start=start, until=until, tz=timezone.get_current_timezone_name())
    else:
        written = {
            str(g): _rollup_rebuild_orm(granularity=g, start=start, until=until)
            for g in (UsageRollup.Granularity.HOUR, UsageRollup.Granularity.DAY)
        }
    job_run_record(
        name="rollup_usage",
        duration_ms=int((time.monotonic() - started) * 1000),
        detail=f"hour rows {written['hour']}, day rows {written['day']}",
    )
    return written


def _rollup_rebuild_orm(*, granularity: str, start: datetime, until: datetime) -> int:
    """The portable path (SQLite): GROUP BY in SQL, the grouped rows inserted in batches."""
    grouped = (
        LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=until)
        .annotate(bucket=Trunc("created_at", granularity, tzinfo=timezone.get_current_timezone()))
        .values("bucket", "user_id", "classroom_id", "model_id")
        .annotate(
            requests=Count("id", filter=Q(kind=LedgerEntry.Kind.CHARGE)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_billing"),
        )
        .order_by()
    )
    with transaction.atomic():
        UsageRollup.objects.filter(granularity=granularity, bucket_start__gte=start, bucket_start__lt=until).delete()
        rows = UsageRollup.objects.bulk_create(
            (
                UsageRollup(
                    granularity=granularity,
                    bucket_start=row["bucket"],
                    user_id=row["user_id"],
                    classroom_id=row["classroom_id"],
                    model_id=row["model_id"],
                    requests=row["requests"],
                    prompt_tokens=row["prompt"] or 0,
                    completion_tokens=row["completion"] or 0,
                    cost_billing=row["cost"] or Decimal(0),
                )
                for row in grouped.iterator(chunk_size=5000)
            ),
            batch_size=5000,
        )
    return len(rows)


def job_run_record(*, name: str, duration_ms: int, detail: str = "") -> None:
    JobRun.objects.update_or_create(
        name=name,
        defaults={"last_success_at": timezone.now(), "last_duration_ms": duration_ms, "last_detail": detail[:200]},
    )


# A run keeps its first differences (all are counted and logged); runs are kept this long.
BALANCE_CHECK_STORED_DIFFERENCES = 200
BALANCE_CHECK_LOGGED_DIFFERENCES = 20
BALANCE_CHECK_KEEP = timedelta(days=90)


def ledger_balance_check(*, now: datetime | None = None) -> BalanceCheck:
    """Set every budget's usage counter and the usage rollups against the ledger
    (selectors.ledger_balance) and record what disagrees. Reads the billing tables at one
    moment: on PostgreSQL a repeatable-read snapshot (writers go on); on SQLite one
    transaction, which this project's IMMEDIATE mode makes wait for, and hold off, writers
    while it reads.

    Side effects: a BalanceCheck row (runs older than BALANCE_CHECK_KEEP deleted), the
    JobRun "ledger_balance", a WARNING log line per difference (the first
    BALANCE_CHECK_LOGGED_DIFFERENCES) and one with their number. Writes nothing it reads, so
    running it twice, or twice at once, is safe."""
    started = time.monotonic()
    now = now or timezone.now()
    # Inside a caller's transaction (a test's) the caller's isolation level stands.
    snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if snapshot:
            with connection.cursor() as cursor:  # must be the transaction's first statement
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        report = ledger_balance(now=now)
    duration_ms = int((time.monotonic() - started) * 1000)
    found = len(report.differences)
    check = BalanceCheck.objects.create(
        checked_at=now,
        budgets_checked=report.budgets_checked,
        difference_count=found,
        differences=report.differences[:BALANCE_CHECK_STORED_DIFFERENCES],
        duration_ms=duration_ms,
    )
    BalanceCheck.objects.filter(checked_at__lt=now - BALANCE_CHECK_KEEP).delete()
    job_run_record(
        name="ledger_balance",
        duration_ms=duration_ms,
        detail=f"{found} differences in {report.budgets_checked} budgets",
    )
    for difference in report.differences[:BALANCE_CHECK_LOGGED_DIFFERENCES]:
        logger.warning(
            "ledger balance: %(where)s %(budget)s %(field)s is %(found)s, the ledger says %(ledger)s", difference
        )
    if found:
        logger.warning(
            "ledger balance: %d differences in %d budgets (balance check %d)", found, report.budgets_checked, check.pk
        )
    return check


# Each limit a teacher sets, by the site cap that bounds it (SiteBillingSettings.max_*).
_SITE_CAPS = {
    "student_tokens": "max_student_token_limit",
    "student_cost": "max_student_cost_limit",
    "rpm": "max_rpm",
    "tpm": "max_tpm",
}


def _site_caps_errors(
    *, site: SiteBillingSettings, limits: dict[str, tuple[str, int | Decimal | None]]
) -> dict[str, str]:
    """The one check of the site's caps, for class policies and student overrides alike:
    an error for each field (`limits`: form field -> (kind of limit, value)) whose value
    passes the cap of its kind. None means "no limit", which a capped kind does not allow."""
    errors: dict[str, str] = {}
    for field, (kind, value) in limits.items():
        cap = getattr(site, _SITE_CAPS[kind])
        if cap is not None and (value is None or value > cap):
            errors[field] = str(_("The site allows at most %(cap)s here.") % {"cap": cap})
    return errors


def _bounds_errors(model: type[models.Model], values: dict[str, int | Decimal | None]) -> dict[str, str]:
    """An error for each given limit outside what its field takes (the bounds on the
    model fields: MAX_MONEY_LIMIT and the like), so a service refuses what a form would."""
    errors: dict[str, str] = {}
    for field, value in values.items():
        if value is None:
            continue
        try:
            model._meta.get_field(field).run_validators(value)
        except ValidationError as exc:
            errors[field] = exc.messages[0]
    return errors


def quota_policy_validate(
    *,
    period: str | None,
    term_start: object = None,
    term_end: object = None,
    student_token_limit: int | None = None,
    student_cost_limit: Decimal | None = None,
    class_token_pool: int | None = None,
    class_cost_pool: Decimal | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> None:
    """Raise ValidationError for a class quota out of bounds or that the site's caps do not
    allow, or a term without dates. The teachers' page and admin both save through
    quota_policy_set, which runs this; admin's form runs it too, to show the errors on the form."""
    errors = _site_caps_errors(
        site=site_billing_settings(),
        limits={
            "student_token_limit": ("student_tokens", student_token_limit),
            "student_cost_limit": ("student_cost", student_cost_limit),
            "rpm": ("rpm", rpm),
            "tpm": ("tpm", tpm),
        },
    )
    errors |= _bounds_errors(
        QuotaPolicy,
        {
            "student_token_limit": student_token_limit,
            "student_cost_limit": student_cost_limit,
            "class_token_pool": class_token_pool,
            "class_cost_pool": class_cost_pool,
            "rpm": rpm,
            "tpm": tpm,
        },
    )
    if period == Period.TERM and (not term_start or not term_end or term_end < term_start):  # type: ignore[operator]
        errors["term_end"] = str(_("A term needs a start date and an end date after it."))
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def quota_policy_set(
    *,
    classroom: Classroom,
    period: str,
    term_start: object = None,
    term_end: object = None,
    student_token_limit: int | None = None,
    student_cost_limit: Decimal | None = None,
    class_token_pool: int | None = None,
    class_cost_pool: Decimal | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> QuotaPolicy:
    """Set a class's quota. Refuses (ValidationError, nothing written) what the site's caps
    do not allow, and a term without dates. Side effects: the QuotaPolicy row; the cached
    limits of every student dropped in this process (others follow within LIMITS_TTL); when
    the period changed, what was spent since the new period began carried into its budget
    rows (_counters_carry_in)."""
    quota_policy_validate(
        period=period,
        term_start=term_start,
        term_end=term_end,
        student_token_limit=student_token_limit,
        student_cost_limit=student_cost_limit,
        class_token_pool=class_token_pool,
        class_cost_pool=class_cost_pool,
        rpm=rpm,
        tpm=tpm,
    )
    limits_forget()
    before = QuotaPolicy.objects.filter(classroom=classroom).values_list("period", "term_start", "term_end").first()
    policy, _created = QuotaPolicy.objects.update_or_create(
        classroom=classroom,
        defaults={
            "period": period,
            "term_start": term_start if period == Period.TERM else None,
            "term_end": term_end if period == Period.TERM else None,
            "student_token_limit": student_token_limit,
            "student_cost_limit": student_cost_limit,
            "class_token_pool": class_token_pool,
            "class_cost_pool": class_cost_pool,
            "rpm": rpm,
            "tpm": tpm,
        },
    )
    if before != (policy.period, policy.term_start, policy.term_end):
        _counters_carry_in(classroom=classroom)  # the limits were forgotten above: it reads the new ones
    return policy


@transaction.atomic
def site_billing_settings_save(*, site: SiteBillingSettings) -> SiteBillingSettings:
    """Save the site's billing settings (admin). Side effects: the row; the cached settings
    and limits dropped in this process (others follow within seconds); when the default
    period changed, what was spent since the new period began carried into the budget rows
    of every class without a quota of its own and of everyone in no class, as
    quota_policy_set does for a class (else the meters showed 0 used on the new period)."""
    before = SiteBillingSettings.objects.filter(pk=site.pk).values_list("default_period", flat=True).first()
    site.save()
    site_billing_settings_forget()
    limits_forget()
    if before is not None and before != site.default_period:
        for classroom in Classroom.objects.filter(quota_policy__isnull=True):
            _counters_carry_in(classroom=classroom)
        _classless_counters_carry_in()
    return site


def quota_policy_delete(*, policy: QuotaPolicy) -> None:
    """The class falls back to the site's defaults. Side effects: the QuotaPolicy row
    deleted; cached limits dropped (as quota_policy_set)."""
    classroom = policy.classroom
    policy.delete()
    limits_forget()
    _counters_carry_in(classroom=classroom)  # the site's default period may not be the policy's


def student_override_set(
    *, classroom: Classroom, student: User, token_limit: int | None, cost_limit: Decimal | None
) -> StudentOverride | None:
    """Give one student a different limit (both empty: remove the override). Capped by the
    site like the class limits. Side effects: a StudentOverride row created, changed or
    deleted; cached limits dropped."""
    if not classroom_has_student(classroom=classroom, student=student):
        raise ValidationError({"student": str(_("That student is not in this class."))})
    # An empty field keeps the class's limit (it is not "no limit"), so only those given are capped.
    errors = _site_caps_errors(
        site=site_billing_settings(),
        limits={
            field: (kind, value)
            for field, kind, value in (
                ("token_limit", "student_tokens", token_limit),
                ("cost_limit", "student_cost", cost_limit),
            )
            if value is not None
        },
    )
    errors |= _bounds_errors(StudentOverride, {"token_limit": token_limit, "cost_limit": cost_limit})
    if errors:
        raise ValidationError(errors)
    limits_forget()
    if token_limit is None and cost_limit is None:
        StudentOverride.objects.filter(classroom=classroom, student=student).delete()
        return None
    override, _created = StudentOverride.objects.update_or_create(
        classroom=classroom, student=student, defaults={"token_limit": token_limit, "cost_limit": cost_limit}
    )
    return override
