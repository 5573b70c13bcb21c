from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.models import AuditEvent
from apps.accounts.selectors import classroom_for_student, classroom_get_for_teacher, classroom_student_get
from apps.accounts.services import audit_record
from apps.billing.selectors import quota_status
from apps.providers.selectors import (
    chat_models_offered_to,
    classroom_compares,
    classroom_default_model,
    models_described,
)
from webchat.presenting import presentation_context

from .models import Conversation
from .pipeline import MAX_LANES
from .rendering import markdown_policy
from .selectors import (
    conversation_get_deleted_for_user,
    conversation_get_for_teacher,
    conversation_get_for_user,
    conversation_groups,
    conversation_list_for_user,
    conversation_messages,
    conversations_of_student_for_teacher,
)
from .services import conversation_delete, conversation_rename, conversation_restore, conversation_version_show


@require_GET
@login_required
def chat(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    conversation = (
        conversation_get_for_user(user=request.user, conversation_id=conversation_id) if conversation_id else None
    )
    # A conversation begun in no class goes on only while the student is in none: else the
    # page shows the class's models and meter, whose rules a new conversation follows.
    classroom = (
        conversation.classroom
        if conversation and conversation.classroom_id
        else classroom_for_student(user=request.user)
    )
    models = chat_models_offered_to(user=request.user, classroom=classroom)
    # The conversation's model, else (none, or the teacher switched it off since) the class's
    # default, else the first offered.
    candidates = [conversation.model if conversation else None, classroom_default_model(classroom=classroom)]
    selected = next(
        (model.route_name for model in candidates if model is not None and model in models),
        models[0].route_name if models else "",
    )
    search = request.GET.get("q", "").replace("\x00", "")[:100]  # a NUL matches nothing (and PostgreSQL refuses it)
    # ?at=<message>: the branch through that version (the versions switcher's links, a search
    # hit), for this page only: a GET changes nothing. The switcher then POSTs the choice
    # (shown, below), which is where the conversation opens until the next turn.
    at = _id_from(request.GET.get("at", ""))
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": conversation,
            "classroom": classroom,
            # Grouped by date: Today, Yesterday, Previous 7 days, Previous 30 days, by month.
            "conversation_groups": conversation_groups(
                conversations=conversation_list_for_user(user=request.user, search=search)[:100]
            ),
            "search": search,
            "just_deleted": _just_deleted(request),
            "chat_messages": conversation_messages(conversation=conversation, at=at or conversation.shown_message_id)
            if conversation
            else [],
            "models": models,
            # The picker's meaning: per provider, each offered model's name, one-line
            # description, price in and out per million tokens with currency, context size.
            "models_described": models_described(models=models),
            "selected_model": selected,
            "quota": quota_status(user=request.user, classroom=classroom),
            "markdown_policy": markdown_policy(),
        },
    )


def _just_deleted(request: HttpRequest) -> Conversation | None:
    """After a delete (?deleted=<id>): the conversation, while it can still be undone."""
    conversation_id = _id_from(request.GET.get("deleted", ""))
    if conversation_id is None:
        return None
    try:
        return conversation_get_deleted_for_user(user=request.user, conversation_id=conversation_id)
    except Http404:
        return None


def _id_from(value: str) -> int | None:
    """An id typed in a query string or form: ASCII digits only ("²".isdigit() is true, and
    int() refuses it), and short of a bigint."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


@require_POST
@login_required
def shown(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The versions switcher's choice, remembered: the conversation opens on the branch
    through `message` until its next turn. 400 for a message not in this conversation."""
    conversation = conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    message_id = _id_from(request.POST.get("message", ""))
    if message_id is None or not conversation_version_show(conversation=conversation, message_id=message_id):
        return HttpResponse(status=400)
    return HttpResponse(status=204)


@require_POST
@login_required
def rename(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    try:
        conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
    except ValidationError:
        return HttpResponse(status=400)
    return redirect("conversation", conversation_id=conversation.pk)


@require_POST
@login_required
def delete(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = conversation_get_for_user(user=request.user, conversation_id=conversation_id)
    conversation_delete(conversation=conversation)
    # The list then offers "Deleted · Undo" for a few seconds (the restore view).
    return redirect(reverse("home") + f"?deleted={conversation.pk}")


@require_POST
@login_required
def restore(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """Undo a delete, for its owner, shortly after it (UNDO_DELETE_SECONDS)."""
    conversation = conversation_get_deleted_for_user(user=request.user, conversation_id=conversation_id)
    conversation_restore(conversation=conversation)
    return redirect("conversation", conversation_id=conversation.pk)


@require_GET
@login_required
def student_conversations(request: HttpRequest, classroom_id: int, student_id: int) -> HttpResponse:
    """A teacher's read-only list of one student's conversations (when the class allows)."""
    classroom = classroom_get_for_teacher(user=request.user, classroom_id=classroom_id)
    student = classroom_student_get(classroom=classroom, student_id=student_id)
    if not classroom.teacher_can_read:
        raise Http404("No such student.")
    conversations = conversations_of_student_for_teacher(
        teacher=request.user, classroom_id=classroom.pk, student_id=student.pk
    )
    return render(
        request,
        "conversations/teacher_list.html",
        {"classroom": classroom, "student": student, "conversations": conversations},
    )


@require_GET
@login_required
def teacher_read(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """A teacher reads a student's conversation, read-only; every read is recorded."""
    conversation = conversation_get_for_teacher(teacher=request.user, conversation_id=conversation_id)
    audit_record(
        actor=request.user,
        action=AuditEvent.Action.READ_CONVERSATION,
        classroom=conversation.classroom,
        subject=conversation.owner,
        detail=f"conversation {conversation.pk}",
    )
    return render(
        request,
        "conversations/teacher_read.html",
        {
            "conversation": conversation,
            "chat_messages": conversation_messages(conversation=conversation, at=_id_from(request.GET.get("at", ""))),
        },
    )


@require_GET
@login_required
def compare_page(request: HttpRequest) -> HttpResponse:
    """Side by side: one question to 2-4 of the student's models at once (compare.send on
    the chat socket); each answer can then be continued as its own conversation."""
    classroom = classroom_for_student(user=request.user)
    models = chat_models_offered_to(user=request.user, classroom=classroom)
    return render(
        request,
        "conversations/compare.html",
        {
            "models": models,
            "models_described": models_described(models=models),
            "preselected": {model.route_name for model in models[:2]},
            "compare_allowed": classroom_compares(classroom=classroom),
            "max_lanes": MAX_LANES,
            **presentation_context(request),
        },
    )
