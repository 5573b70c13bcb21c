"""A provider's reported usage is checked before it is billed: missing, malformed, below our
own count of the text or absurdly large, it is replaced by our count or a bound, flagged for
review and logged. Settling never fails on it; and if settling fails for any other reason,
the reply is still saved and its hold released."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

# Loading the ASGI app sets Django's logging up again, which drops pytest's log capture:
# load it now, before any test captures logs.
import webchat.asgi  # noqa: E402,F401,I001
from apps.billing import services as billing_services
from apps.billing.models import Hold, LedgerEntry, UsageCounter
from apps.billing.services import (
    COMPLETION_BOUND_MARGIN,
    PROMPT_BOUND_FACTOR,
    PROMPT_BOUND_MARGIN,
    usage_reconcile,
)
from apps.conversations.models import Message
from apps.providers.models import ChatModel
from apps.providers.tokens import count_prompt_tokens, count_text_tokens
from tests.billing.conftest import policy_set, take
from tests.billing.conftest import usage as reply_usage
from tests.conftest import People, ws_connect, ws_turn
from tests.fake_upstream import Behaviour, FakeUpstream

MODEL = "fakeai/fake-model"
TEXT = ["Hello", ", ", "class", "!"]


async def turn(user: Any, **send: Any) -> list[dict[str, Any]]:
    ws = await ws_connect(user)
    await ws.connect()
    try:
        frames = await ws_turn(ws, model=MODEL, content="hello", **send)
        assert await ws.receive_nothing(timeout=0.2), "a second frame after the turn's end"
        return frames
    finally:
        await ws.disconnect()


def counted_prompt() -> int:
    return count_prompt_tokens(messages=[{"role": "user", "content": "hello"}], model_name="fake-model").tokens


def counted_text() -> int:
    return count_text_tokens(text="".join(TEXT), model_name="fake-model").tokens


async def billed(frames: list[dict[str, Any]]) -> tuple[LedgerEntry, Message]:
    done = frames[-1]
    assert done["type"] == "chat.done" and done["status"] == "complete"
    entry = await LedgerEntry.objects.aget()
    reply = await Message.objects.aget(pk=done["message"])
    assert reply.content == "".join(TEXT)
    # The reply, the socket and the ledger all say the same billed numbers.
    assert (reply.prompt_tokens, reply.completion_tokens) == (entry.prompt_tokens, entry.completion_tokens)
    assert done["usage"] == {"prompt_tokens": entry.prompt_tokens, "completion_tokens": entry.completion_tokens}
    assert (reply.usage_review, reply.cost) == (entry.usage_review, entry.cost_billing)
    assert (await Hold.objects.aget()).status == "settled"
    return entry, reply


@pytest.mark.django_db(transaction=True)
async def test_zero_completion_tokens_for_a_reply_with_text_bills_our_count(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    fake_upstream.default = Behaviour(chunks=TEXT, usage=(counted_prompt(), 0))
    with caplog.at_level(logging.WARNING):
        entry, _reply = await billed(await turn(people.student))

    assert (entry.prompt_tokens, entry.completion_tokens) == (counted_prompt(), counted_text())
    assert (entry.usage_source, entry.usage_review) == ("counted", "under_reported")
    assert entry.cost_billing > 0
    assert any("under_reported" in record.getMessage() for record in caplog.records)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("reported", "why"),
    [
        ((10**13, 5), "clamped"),  # the 28.8 million CNY request
        ((2**63, 2**63), "clamped"),  # past a 64-bit column
        ((100, 10**6), "clamped"),  # a provider ignoring max_tokens by far
        ((-5, -3), "malformed"),  # a CHECK constraint used to fail
        (("many", "4"), "malformed"),
        ((12.5, None), "malformed"),
        ((None, None), "malformed"),
        ((["12"], {"n": 4}), "malformed"),
    ],
)
async def test_absurd_or_malformed_usage_is_bounded_flagged_and_never_fails_settle(
    people: People,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
    reported: tuple[Any, Any],
    why: str,
) -> None:
    settings.CHAT_DEFAULT_MAX_TOKENS = 100
    fake_upstream.default = Behaviour(chunks=TEXT, usage=reported)
    with caplog.at_level(logging.WARNING):
        entry, reply = await billed(await turn(people.student))

    prompt_bound = counted_prompt() * PROMPT_BOUND_FACTOR + PROMPT_BOUND_MARGIN
    completion_bound = 100 + COMPLETION_BOUND_MARGIN
    assert 0 < entry.prompt_tokens <= prompt_bound and 0 < entry.completion_tokens <= completion_bound
    assert entry.usage_review == reply.usage_review == why
    assert entry.cost_billing < 1  # CNY: a few tokens' worth, not millions
    assert any(why in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    counter = await UsageCounter.objects.aget(scope_key__endswith=f"s{people.student.pk}")
    assert counter.tokens_held == 0 and counter.tokens_used == entry.prompt_tokens + entry.completion_tokens


@pytest.mark.django_db(transaction=True)
async def test_plausible_usage_is_billed_as_reported(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream
) -> None:
    # Other vendors' tokenizers differ from ours: a count somewhat below our estimate is fine.
    fake_upstream.default = Behaviour(chunks=TEXT, usage=(counted_prompt() + 10, counted_text() + 3))
    entry, _reply = await billed(await turn(people.student))
    assert (entry.prompt_tokens, entry.completion_tokens) == (counted_prompt() + 10, counted_text() + 3)
    assert (entry.usage_source, entry.usage_review) == ("provider", "")


@pytest.mark.django_db(transaction=True)
async def test_when_settling_fails_anyway_the_reply_is_saved_and_the_hold_released(
    people: People,
    fake_model: ChatModel,
    fake_upstream: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sync_to_async(policy_set)(people.classroom, student_token_limit=100_000)

    written = billing_services.insert

    def broken(instance: Any) -> Any:
        if isinstance(instance, LedgerEntry):
            raise RuntimeError("the ledger insert broke")
        return written(instance)

    monkeypatch.setattr(billing_services, "insert", broken)  # say, the ledger insert fails
    fake_upstream.default = Behaviour(chunks=TEXT)
    with caplog.at_level(logging.WARNING):
        frames = await turn(people.student)

    done = frames[-1]
    assert (done["type"], done["status"], done["cost"]) == ("chat.done", "complete", None)
    assert done["quota"]["tokens_used"] == 0  # nothing billed, and nothing still held
    reply = await Message.objects.aget(pk=done["message"])
    assert (reply.status, reply.content, reply.usage_review) == ("complete", "".join(TEXT), "unsettled")
    assert (await Hold.objects.aget()).status == "released"
    counter = await UsageCounter.objects.aget(scope_key__endswith=f"s{people.student.pk}")
    assert (counter.tokens_held, counter.cost_held_units, counter.tokens_used) == (0, 0, 0)
    assert not await LedgerEntry.objects.aexists()
    assert any("settling" in r.getMessage() and r.exc_info for r in caplog.records)
    # The next turn is served (and billed) as usual.
    monkeypatch.undo()
    assert (await turn(people.student))[-1]["cost"] is not None


@pytest.mark.django_db
def test_settle_bounds_whatever_numbers_it_is_handed(people: People, fake_model: ChatModel) -> None:
    from apps.billing.services import hold_settle

    for prompt, completion in ((-1, 2**63), ("12", None), (3.5, True)):
        request_id = take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100)
        entry = hold_settle(request_id=request_id, usage=reply_usage(prompt, completion))  # type: ignore[arg-type]
        assert 0 <= entry.prompt_tokens <= 100 * PROMPT_BOUND_FACTOR + PROMPT_BOUND_MARGIN
        assert 0 <= entry.completion_tokens <= 100 + COMPLETION_BOUND_MARGIN
        assert entry.usage_review == "clamped"


@pytest.mark.parametrize(
    ("reported", "counted", "estimated", "billed"),
    [
        ((100, 40), (100, 40), False, (100, 40, "provider", "")),
        ((100, 0), (100, 40), True, (100, 40, "counted", "under_reported")),  # text, yet zero tokens
        ((100, 1), (100, 1), True, (100, 1, "provider", "")),  # one token of text is one token
        ((100, 20), (100, 40), True, (100, 20, "provider", "")),  # another tokenizer: half our estimate
        ((100, 19), (100, 40), True, (100, 40, "counted", "under_reported")),
        ((100, 39), (100, 40), False, (100, 40, "counted", "under_reported")),  # our count is exact here
        ((10, 40), (100, 40), False, (100, 40, "counted", "under_reported")),
        ((None, 40), (100, 40), False, (100, 40, "counted", "malformed")),
        ((100, 0), (100, 0), False, (100, 0, "provider", "")),  # no text: zero is right
    ],
)
def test_reported_usage_is_checked_against_our_count(
    reported: tuple[int | None, int | None],
    counted: tuple[int, int],
    estimated: bool,
    billed: tuple[int, int, str, str],
) -> None:
    result = usage_reconcile(
        reported_prompt=reported[0],
        reported_completion=reported[1],
        counted_prompt=counted[0],
        counted_completion=counted[1],
        estimated=estimated,
    )
    assert (result.prompt_tokens, result.completion_tokens, result.usage_source, result.usage_review) == billed


@pytest.mark.django_db(transaction=True)
def test_admin_lists_the_rows_to_review(
    people: People, fake_model: ChatModel, fake_upstream: FakeUpstream, client: Client
) -> None:
    from asgiref.sync import async_to_sync

    fake_upstream.push(Behaviour(chunks=TEXT), Behaviour(chunks=TEXT, usage=(10**13, 5)))
    async_to_sync(turn)(people.student)
    async_to_sync(turn)(people.student)
    clamped = LedgerEntry.objects.get(usage_review="clamped")
    client.force_login(people.admin)

    ledger = client.get(
        reverse("admin:billing_ledgerentry_changelist"), {"usage_review__exact": "clamped"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    replies = client.get(
        reverse("admin:conversations_message_changelist"), {"usage_review__exact": "clamped"}, HTTP_ACCEPT_LANGUAGE="en"
    )

    assert ledger.status_code == replies.status_code == 200
    assert "usage to review" in ledger.content.decode().lower()
    assert list(ledger.context["cl"].result_list) == [clamped]
    assert [m.request_id for m in replies.context["cl"].result_list] == [clamped.request_id]
