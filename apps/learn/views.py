"""The teaching pages: the index, the tokenizer (and its JSON endpoint) and the provider
pages. Thin: apps.learn.tokenizer and apps.learn.selectors do the work."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from apps.accounts.selectors import classroom_for_student
from apps.gateway.selectors import api_keys_active_of_user
from apps.providers.selectors import chat_model_get_by_route_name, classroom_default_model
from webchat.errors import BAD_JSON, ErrorCode
from webchat.presenting import presentation_context

from .code_examples import code_examples
from .selectors import (
    guide_language,
    provider_comparison_rows,
    provider_get_for_page,
    provider_guide_sections,
    provider_model_rows,
    provider_school_key_source,
    providers_for_learn,
    tokenizer_models_for,
)
from .services import tokenizer_call_allowed
from .tokenizer import CURRENCIES, TEXT_MAX_CHARS, money_text, text_tokens_split, token_cost


@require_GET
@login_required
def learn_index(request: HttpRequest) -> HttpResponse:
    return render(request, "learn/index.html", {**presentation_context(request), "providers": providers_for_learn()})


@require_GET
@login_required
def tokenizer_page(request: HttpRequest) -> HttpResponse:
    classroom = classroom_for_student(user=request.user)
    models = tokenizer_models_for(user=request.user, classroom=classroom)
    wanted = request.GET.get("model", "")  # a reply's token count and the provider pages link here
    chosen = next((m for m in models if m.route_name == wanted), None)
    if chosen is None and wanted:
        # Counting calls no provider: a model linked from a reply or a provider page is
        # offered even when this user cannot chat with it.
        chosen = chat_model_get_by_route_name(route_name=wanted)
        if chosen is not None:
            models = [*models, chosen]
    if chosen is None:
        default = classroom_default_model(classroom=classroom)
        chosen = default if default in models else (models[0] if models else None)
    return render(
        request,
        "learn/tokenizer.html",
        {
            **presentation_context(request),
            "models": models,
            "chosen": chosen,
            "max_chars": TEXT_MAX_CHARS,
            "text": request.GET.get("text", "")[:TEXT_MAX_CHARS],
        },
    )


def _error(code: ErrorCode, message: str, status: int, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": {"code": str(code), "message": message, **extra}}, status=status)


@require_POST
def tokenizer_count(request: HttpRequest) -> JsonResponse:
    """POST {"text", "model": "provider/model"} -> the tokens, the count and their cost.
    Logged-in only (403), CSRF-protected (the page's script sends the token), throttled
    per user (429 with Retry-After)."""
    if not request.user.is_authenticated:
        return _error(ErrorCode.SIGNED_OUT, _("Log in to use the tokenizer."), 403)
    try:
        body = json.loads(request.body or b"{}")
    except RequestDataTooBig:  # over DATA_UPLOAD_MAX_MEMORY_SIZE: Django would answer with its HTML page
        message = _("The text is too long: the tokenizer takes at most %(max)s characters.") % {"max": TEXT_MAX_CHARS}
        return _error(ErrorCode.CONTENT_TOO_LONG, message, 400, max_chars=TEXT_MAX_CHARS)
    except BAD_JSON:
        return _error(ErrorCode.BAD_REQUEST, _("The request body must be JSON."), 400)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not isinstance(body.get("model"), str):
        return _error(ErrorCode.BAD_REQUEST, _('Send {"text": "...", "model": "provider/model"}.'), 400)
    text = body["text"]
    if len(text) > TEXT_MAX_CHARS:
        message = _("The text is %(length)s characters long; the tokenizer takes at most %(max)s.") % {
            "length": len(text),
            "max": TEXT_MAX_CHARS,
        }
        return _error(ErrorCode.CONTENT_TOO_LONG, message, 400, max_chars=TEXT_MAX_CHARS)
    model = chat_model_get_by_route_name(route_name=body["model"])
    if model is None:
        return _error(ErrorCode.NOT_FOUND, _("No such model: %(model)s.") % {"model": body["model"]}, 400)
    wait = tokenizer_call_allowed(user_id=request.user.pk)
    if wait is not None:
        response = _error(
            ErrorCode.RATE_LIMITED, _("Too many requests: try again in %(seconds)s s.") % {"seconds": wait}, 429
        )
        response["Retry-After"] = str(wait)
        return response
    split = text_tokens_split(text=text, model_name=model.name)
    cost = token_cost(model=model, tokens=split.count)
    payload: dict[str, Any] = {
        "model": model.route_name,
        "encoding": split.encoding,
        "exact": split.exact,
        "count": split.count,
        "characters": len(text),
        "tokens": split.pieces,
        "input_cost": None,
        "output_cost": None,
        "currency": None,
        "price": None,
        "costs": {},
    }
    if cost is not None:
        own_input, own_output = cost.by_currency[cost.currency]
        payload.update(
            {
                "input_cost": money_text(own_input),
                "output_cost": money_text(own_output),
                "currency": cost.currency,
                "price": {
                    "input_per_million": money_text(cost.input_per_million),
                    "output_per_million": money_text(cost.output_per_million),
                    "currency": cost.currency,
                    "effective_from": cost.effective_from.date().isoformat(),
                },
                "costs": {
                    currency: {"input": money_text(values[0]), "output": money_text(values[1])}
                    for currency, values in cost.by_currency.items()
                    if currency in CURRENCIES
                },
            }
        )
    response = JsonResponse(payload, json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def provider_page(request: HttpRequest, slug: str) -> HttpResponse:
    provider = provider_get_for_page(slug=slug)
    if provider is None:
        raise Http404("No such provider.")
    context = presentation_context(request)
    classroom = classroom_for_student(user=request.user)
    language = guide_language(get_language())
    keys = [] if context["presenting"] else list(api_keys_active_of_user(user=request.user))
    model_rows = provider_model_rows(provider=provider)
    provider_url = provider.base_url if "://" in provider.base_url else request.build_absolute_uri(provider.base_url)
    site_base_url = request.build_absolute_uri(reverse("v1-models")).removesuffix("/models")
    key_var = provider.env_key_var or "OPENAI_API_KEY"
    first = model_rows[0].model if model_rows else None
    return render(
        request,
        "learn/provider.html",
        {
            **context,
            "provider": provider,
            "provider_url": provider_url,
            "language": language,
            "model_rows": model_rows,
            "key_source": provider_school_key_source(provider=provider, user=request.user, classroom=classroom),
            "sections": provider_guide_sections(provider=provider, language=language),
            "comparison": provider_comparison_rows(),
            "key_var": key_var,
            "key_prefix": keys[0].prefix if keys else "",
            "code": code_examples(
                provider_base_url=provider_url,
                key_var=key_var,
                model=first.name if first else "model-name",
                site_base_url=site_base_url,
                site_model=first.route_name if first else "",
            ),
        },
    )
