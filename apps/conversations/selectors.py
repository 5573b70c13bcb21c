"""Reads for conversations. Every lookup a user can influence is scoped to that user."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from apps.accounts.models import User
from apps.billing.models import LedgerEntry
from webchat.plainsql import column, select, table
from webchat.plainsql import rows as plain_rows

from .models import Conversation, Message

# Replies that carry text the model should see again as context.
_CONTEXT_REPLY_STATUSES = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.INTERRUPTED)


def conversation_list_for_user(*, user: User, search: str = "") -> QuerySet[Conversation]:
    """The user's conversations (not deleted), newest first; `search` matches the title or
    any message, of any version. Found by a message, a conversation carries `hit_id`: its
    latest matching message, so the result can open on the branch that has it."""
    conversations = Conversation.objects.filter(owner=user, deleted_at__isnull=True).select_related("model__provider")
    search = search.strip()
    if search:
        hits = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=search).order_by("-id")
        conversations = (
            conversations.filter(Q(title__icontains=search) | Q(messages__content__icontains=search))
            .distinct()
            .annotate(hit_id=Subquery(hits.values("id")[:1]))
        )
    return conversations


@dataclass(frozen=True)
class ConversationGroup:
    key: str  # today, yesterday, week, month, or the month as YYYY-MM
    label: str
    conversations: list[Conversation]


def conversation_groups(
    *, conversations: Iterable[Conversation], now: datetime | None = None
) -> list[ConversationGroup]:
    """The list as the sidebar shows it: by when each conversation last changed, in the
    user's time zone: Today, Yesterday, Previous 7 days, Previous 30 days, then one group a
    month. Expects them newest first (conversation_list_for_user); no queries."""
    today = timezone.localtime(now or timezone.now()).date()
    groups: list[ConversationGroup] = []
    for conversation in conversations:
        day = timezone.localtime(conversation.updated_at).date()
        days = (today - day).days
        if days <= 0:
            key, label = "today", _("Today")
        elif days == 1:
            key, label = "yesterday", _("Yesterday")
        elif days < 7:
            key, label = "week", _("Previous 7 days")
        elif days < 30:
            key, label = "month", _("Previous 30 days")
        else:
            key, label = f"{day:%Y-%m}", date_format(day, "YEAR_MONTH_FORMAT")
        if not groups or groups[-1].key != key:
            groups.append(ConversationGroup(key=key, label=str(label), conversations=[]))
        groups[-1].conversations.append(conversation)
    return groups


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    """The user's own conversation; 404 for anyone else's, a deleted or a missing one."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, owner=user, deleted_at__isnull=True)
        .select_related("model__provider", "classroom")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversation_get_for_turn(*, user: User, conversation_id: int) -> Conversation:
    """conversation_get_for_user for a chat turn, which asks on every message: plain SQL
    (webchat/plainsql.py), without the related rows the pages show."""
    found = select(Conversation, {"id": conversation_id, "owner": user.pk, "deleted_at": None})
    if not found:
        raise Http404("No such conversation.")
    return found[0]


class BranchRow(NamedTuple):
    """A message as the prompt needs it."""

    id: int
    parent_id: int | None
    role: str
    content: str
    status: str


def branch_leaf(*, parents: dict[int, int | None], at: int | None = None) -> int | None:
    """The end of the branch to show: the latest message at or below `at` (default: the
    latest message of all, so a regenerated reply or an edited question's branch is current
    as soon as it exists). None: no messages, or `at` is not one of them."""
    if not parents or (at is not None and at not in parents):
        return None
    if at is None:
        return max(parents)
    below = {at}
    for message_id in sorted(parents):  # a child's id is always above its parent's
        if parents[message_id] in below:
            below.add(message_id)
    return max(below)


def branch_ids(*, parents: dict[int, int | None], leaf: int | None) -> list[int]:
    """The ids from the first question down to `leaf`."""
    path: list[int] = []
    while leaf is not None and leaf in parents:
        path.append(leaf)
        leaf = parents[leaf]
    path.reverse()
    return path


def conversation_branch(*, conversation: Conversation, at: int | None = None, descend: bool = True) -> list[BranchRow]:
    """The branch the model is shown, first question first, ending at the latest message at
    or below `at` (default: the latest message), or at `at` itself when not `descend`. One
    query. Raises Http404 if `at` is not a message of this conversation."""
    # Every turn reads it: plain SQL (webchat/plainsql.py).
    fields = ", ".join(column(Message, name) for name in BranchRow._fields)
    every = f"SELECT {fields} FROM {table(Message)} WHERE {column(Message, 'conversation')} = %s ORDER BY 1"
    rows = {row.id: row for row in map(BranchRow._make, plain_rows(every, [conversation.pk]))}
    parents = {message_id: row.parent_id for message_id, row in rows.items()}
    leaf = branch_leaf(parents=parents, at=at) if descend or at is None else (at if at in parents else None)
    if leaf is None and at is not None:
        raise Http404("No such message.")
    return [rows[message_id] for message_id in branch_ids(parents=parents, leaf=leaf)]


def prompt_history(*, branch: list[BranchRow]) -> list[dict[str, str]]:
    """What the model is shown of a branch: its questions, and its replies that carry text."""
    return [
        {"role": row.role, "content": row.content}
        for row in branch
        if not (row.role == Message.Role.ASSISTANT and (row.status not in _CONTEXT_REPLY_STATUSES or not row.content))
    ]


# How long after deleting a conversation its owner may still undo it.
UNDO_DELETE_SECONDS = 300


def conversation_get_deleted_for_user(*, user: User, conversation_id: int) -> Conversation:
    """The user's own conversation deleted in the last UNDO_DELETE_SECONDS (the "Undo" after
    a delete); 404 for anyone else's, one not deleted, or deleted longer ago."""
    conversation = Conversation.objects.filter(
        pk=conversation_id,
        owner=user,
        deleted_at__gte=timezone.now() - timedelta(seconds=UNDO_DELETE_SECONDS),
    ).first()
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversation_messages(*, conversation: Conversation, at: int | None = None) -> list[Message]:
    """The branch the page shows (see conversation_branch; an `at` not in the conversation
    is ignored), oldest first. Each message carries its versions (the siblings it was
    regenerated or edited alongside) as `version`, `versions`, `version_prev` and
    `version_next` (ids, None at the ends), and each reply its ledger row as `bill` (None:
    not billed, or still streaming) for the footer's cost breakdown. Two queries."""
    every = list(conversation.messages.select_related("model__provider").order_by("id"))
    parents = {message.pk: message.parent_id for message in every}
    leaf = branch_leaf(parents=parents, at=at) or branch_leaf(parents=parents)
    shown = set(branch_ids(parents=parents, leaf=leaf))
    messages = [message for message in every if message.pk in shown]
    siblings: dict[tuple[int | None, str], list[int]] = {}
    for message in every:
        siblings.setdefault((message.parent_id, message.role), []).append(message.pk)
    for message in messages:
        versions_attach(message=message, sibling_ids=siblings[(message.parent_id, message.role)])
    request_ids = [message.request_id for message in messages if message.is_reply and message.request_id]
    bills = {
        entry.request_id: entry
        for entry in LedgerEntry.objects.filter(request_id__in=request_ids, kind=LedgerEntry.Kind.CHARGE)
    }
    for message in messages:
        message.bill = bills.get(message.request_id) if message.is_reply else None
    return messages


def versions_attach(*, message: Message, sibling_ids: list[int] | None = None) -> Message:
    """Set `version` (1-based), `versions`, `version_prev`, `version_next` on a message from
    its siblings' ids (same parent, same role), read here when not given (one query)."""
    if sibling_ids is None:
        sibling_ids = list(
            Message.objects.filter(
                conversation_id=message.conversation_id, parent_id=message.parent_id, role=message.role
            )
            .order_by("id")
            .values_list("id", flat=True)
        )
    index = sibling_ids.index(message.pk) if message.pk in sibling_ids else 0
    message.version = index + 1
    message.versions = max(len(sibling_ids), 1)
    message.version_prev = sibling_ids[index - 1] if index > 0 else None
    message.version_next = sibling_ids[index + 1] if index + 1 < len(sibling_ids) else None
    return message


def _readable_by_teacher(teacher: User) -> QuerySet[Conversation]:
    """Conversations in the classes this account teaches that let teachers read them (none
    once an admin has made the account a student)."""
    if not teacher.may_teach:
        return Conversation.objects.none()
    return Conversation.objects.filter(classroom__teachers=teacher, classroom__teacher_can_read=True)


def conversation_get_for_teacher(*, teacher: User, conversation_id: int) -> Conversation:
    """A student's conversation, for a teacher of its class when the class lets teachers
    read conversations; 404 otherwise."""
    conversation = (
        _readable_by_teacher(teacher)
        .filter(pk=conversation_id)
        .select_related("owner", "classroom", "model__provider")
        .first()
    )
    if conversation is None:
        raise Http404("No such conversation.")
    return conversation


def conversations_of_student_for_teacher(
    *, teacher: User, classroom_id: int, student_id: int
) -> QuerySet[Conversation]:
    return _readable_by_teacher(teacher).filter(classroom_id=classroom_id, owner_id=student_id).order_by("-updated_at")


def conversation_prompt_history(*, conversation: Conversation) -> list[dict[str, str]]:
    """What the model is shown of the conversation's current branch, oldest first."""
    return prompt_history(branch=conversation_branch(conversation=conversation))
