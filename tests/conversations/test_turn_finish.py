"""Finishing a turn: the reply and its ledger row are written from one record (billing's
ReplyUsage, which TurnOutcome carries), not from two copies kept in step by hand."""

from __future__ import annotations

import pytest

from apps.billing.models import LedgerEntry
from apps.billing.services import ReplyUsage
from apps.conversations.models import Message
from apps.conversations.services import TurnOutcome, turn_begin, turn_finish
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, take
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_the_reply_and_its_ledger_row_say_the_same(people: People, fake_model: ChatModel) -> None:
    policy_set(people.classroom)
    request_id = take(people.student, people.classroom, fake_model, prompt=40, max_tokens=100)
    rows = turn_begin(
        user=people.student,
        conversation=None,
        classroom=people.classroom,
        model=fake_model,
        content="What is a token?",
        request_id=request_id,
    )
    usage = ReplyUsage(
        prompt_tokens=40,
        completion_tokens=7,
        usage_source=Message.UsageSource.PROVIDER,
        estimated=False,
        status=Message.Status.INTERRUPTED,
        route_name=fake_model.route_name,
        provider_slug="fakeai",
        credential_id=None,
        credential_scope="none",
        first_chunk_ms=80,
        total_ms=950,
        model_id=fake_model.pk,
    )
    reply = turn_finish(
        reply_id=rows.reply.pk,
        request_id=request_id,
        outcome=TurnOutcome(content="A token is", error_code="upstream_dropped", usage=usage),
    )
    entry = LedgerEntry.objects.get(request_id=request_id)
    for field in (
        "prompt_tokens",
        "completion_tokens",
        "usage_source",
        "status",
        "route_name",
        "credential_scope",
        "credential_id",
        "first_chunk_ms",
        "total_ms",
        "model_id",
    ):
        assert getattr(reply, field) == getattr(entry, field) == getattr(usage, field), field
    assert (reply.content, reply.error_code, reply.cost) == ("A token is", "upstream_dropped", entry.cost_billing)
