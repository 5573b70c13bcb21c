"""The two database trips of a chat turn stay small: their queries are pinned, so a change
that adds one per turn shows up here (every student's every turn pays for it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apps.conversations.pipeline import ChatRequest, PreparedTurn, _Reply, turn_close, turn_prepare
from apps.providers.client import CallEnded, Usage
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set
from tests.conftest import People

# class, allowlist; in one transaction: budgets (a savepoint), hold, conversation, the
# question, then the reply (its own INSERT: it points at the question's id, which a
# conversation's branches need; see Message.parent)
PREPARE_QUERIES = 11
# in one transaction: hold claim, counters, ledger row, the reply (written and read back in
# one statement), conversation; the budget after
FINISH_QUERIES = 10


def _prepare(people: People, conversation_id: int | None = None) -> PreparedTurn:
    return turn_prepare(
        identify=lambda: people.student,
        request=ChatRequest(conversation_id=conversation_id, model="fakeai/fake-model", content="What is a token?"),
    )


def _finished_reply(turn: PreparedTurn) -> _Reply:
    return _Reply(
        route=turn.route,
        parts=["A token ", "is a piece of text."],
        ended=CallEnded(route=turn.route, usage=Usage(prompt_tokens=30, completion_tokens=8), error=None),
    )


@pytest.mark.django_db(transaction=True)
def test_a_turn_prepares_and_finishes_in_a_fixed_number_of_queries(
    people: People, fake_model: ChatModel, django_assert_num_queries: Any
) -> None:
    policy_set(people.classroom)
    # The first turn of a period creates its counters and reads the catalog into the
    # process's cache; the figures are for every turn after it.
    first = _prepare(people)
    turn_close(turn=first, reply=_finished_reply(first), started=time.monotonic())

    with django_assert_num_queries(PREPARE_QUERIES):
        turn = _prepare(people)
    with django_assert_num_queries(FINISH_QUERIES):
        finished = turn_close(turn=turn, reply=_finished_reply(turn), started=time.monotonic())

    assert finished.message.status == "complete"
    assert (finished.message.prompt_tokens, finished.message.completion_tokens) == (30, 8)
