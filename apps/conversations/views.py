from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.selectors import classroom_for_student
from apps.billing.selectors import quota_status
from apps.providers.selectors import chat_models_usable_for

from .selectors import conversation_get_for_user, conversation_list_for_user, conversation_messages


@require_GET
@login_required
def chat(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    conversation = (
        conversation_get_for_user(user=request.user, conversation_id=conversation_id) if conversation_id else None
    )
    classroom = conversation.classroom if conversation else classroom_for_student(user=request.user)
    models = chat_models_usable_for(user=request.user, classroom=classroom)
    selected = conversation.model.route_name if conversation and conversation.model else (
        models[0].route_name if models else ""
    )
    return render(
        request,
        "conversations/chat.html",
        {
            "conversation": conversation,
            "conversations": conversation_list_for_user(user=request.user)[:100],
            "chat_messages": conversation_messages(conversation=conversation) if conversation else [],
            "models": models,
            "selected_model": selected,
            "quota": quota_status(user=request.user, classroom=classroom),
        },
    )
