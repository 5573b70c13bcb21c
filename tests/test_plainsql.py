"""webchat/plainsql.py writes and reads rows as the ORM does, for the models it serves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db.models import signals
from django.utils import timezone

from apps.billing.models import Hold, LedgerEntry
from apps.conversations.models import Conversation, Message
from apps.providers.models import ChatModel
from tests.conftest import People
from webchat.plainsql import column, insert, instances, select, table, update

pytestmark = pytest.mark.django_db


def _fields(instance: Any) -> dict[str, Any]:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("model", [Conversation, Message, Hold, LedgerEntry])
def test_no_receiver_listens_to_the_models_written_without_save(model: type) -> None:
    # insert and update send no signals: a receiver added for these models would be skipped.
    for signal in (signals.pre_save, signals.post_save, signals.pre_init, signals.post_init):
        assert not signal.has_listeners(model), (signal, model)


def test_an_inserted_row_reads_back_as_the_orm_writes_it(people: People, fake_model: ChatModel) -> None:
    conversation = insert(Conversation(owner=people.student, title="Tokens", model=fake_model))
    question = insert(Message(conversation=conversation, role=Message.Role.USER, content="What is a token?"))
    reply = Message(conversation=conversation, role=Message.Role.ASSISTANT, model=fake_model, route_name="x")
    reply.parent = question
    insert(reply)
    by_orm = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, model=fake_model, route_name="x", parent=question
    )

    assert conversation.pk and conversation.created_at and not conversation._state.adding
    read = Message.objects.get(pk=reply.pk)
    assert _fields(read) == _fields(reply)
    assert {k: v for k, v in _fields(read).items() if k not in ("id", "created_at")} == {
        k: v for k, v in _fields(Message.objects.get(pk=by_orm.pk)).items() if k not in ("id", "created_at")
    }
    with pytest.raises(ValueError):
        insert(read)  # never over a row that exists


def test_rows_read_as_the_orm_reads_them_with_extra_and_missing_columns(people: People, fake_model: ChatModel) -> None:
    conversation = Conversation.objects.create(owner=people.student, title="Tokens", model=fake_model)
    Message.objects.create(conversation=conversation, role=Message.Role.USER, content="1 + 1?")
    sql = f"SELECT *, 41 + 1 AS answer FROM {table(Message)} WHERE {column(Message, 'conversation')} = %s"

    (read,) = instances(Message, sql, [conversation.pk])
    assert _fields(read) == _fields(Message.objects.get(conversation=conversation)) and read.answer == 42

    sql = f"SELECT {column(Message, 'id')}, {column(Message, 'content')} FROM {table(Message)}"
    (some,) = instances(Message, sql, [])
    assert some.content == "1 + 1?" and "status" in some.get_deferred_fields()


def test_update_writes_as_queryset_update_and_returns_the_rows(people: People, fake_model: ChatModel) -> None:
    conversation = Conversation.objects.create(owner=people.student, title="Tokens", model=fake_model)
    reply = Message.objects.create(
        conversation=conversation, role=Message.Role.ASSISTANT, status=Message.Status.STREAMING, model=fake_model
    )

    (written,) = update(
        Message,
        {"id": reply.pk, "status": Message.Status.STREAMING},
        content="Done.",
        status=Message.Status.COMPLETE,
        cost=Decimal("0.000046"),
    )
    assert _fields(written) == _fields(Message.objects.get(pk=reply.pk))
    assert (written.content, written.cost) == ("Done.", Decimal("0.000046"))
    # The condition holds no more: nothing written, nothing returned.
    assert update(Message, {"id": reply.pk, "status": Message.Status.STREAMING}, content="Again") == []
    assert Message.objects.get(pk=reply.pk).content == "Done."


def test_select_reads_as_filter_does_with_none_as_is_null(people: People, fake_model: ChatModel) -> None:
    kept = Conversation.objects.create(owner=people.student, title="Kept", model=fake_model)
    Conversation.objects.create(owner=people.student, title="Deleted", model=fake_model, deleted_at=timezone.now())

    found = select(Conversation, {"owner": people.student.pk, "deleted_at": None})
    assert [_fields(c) for c in found] == [_fields(kept)]
    assert select(Conversation, {"owner_id": people.student.pk, "title": "Nothing"}) == []
