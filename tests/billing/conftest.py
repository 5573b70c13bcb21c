from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse

from apps.accounts.models import Classroom, User
from apps.billing.models import QuotaPolicy
from apps.billing.selectors import limits_forget
from apps.billing.services import ReplyUsage, hold_settle, hold_take
from apps.providers.models import ChatModel


def policy_set(classroom: Classroom, **fields: Any) -> QuotaPolicy:
    defaults: dict[str, Any] = {
        "period": "month",
        "student_token_limit": None,
        "student_cost_limit": None,
        "rpm": None,
        "tpm": None,
    }
    defaults.update(fields)
    policy, _ = QuotaPolicy.objects.update_or_create(classroom=classroom, defaults=defaults)
    limits_forget()
    return policy


def usage(
    prompt: int, completion: int, status: str = "complete", source: str = "provider", model: ChatModel | None = None
) -> ReplyUsage:
    return ReplyUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        usage_source=source,
        estimated=False,
        status=status,
        route_name=model.route_name if model else "fakeai/fake-model",
        provider_slug="fakeai",
        credential_id=None,
        credential_scope="none",
        first_chunk_ms=120,
        total_ms=900,
        model_id=model.pk if model else None,
    )


def take(
    user: User, classroom: Classroom | None, model: ChatModel, prompt: int = 100, max_tokens: int = 100, **kwargs: Any
) -> str:
    request_id = uuid.uuid4().hex
    hold_take(
        request_id=request_id,
        user=user,
        classroom=classroom,
        model=model,
        prompt_tokens=prompt,
        max_tokens=max_tokens,
        **kwargs,
    )
    return request_id


def settle(request_id: str, prompt: int, completion: int, **kwargs: Any):  # type: ignore[no-untyped-def]
    return hold_settle(request_id=request_id, usage=usage(prompt, completion, **kwargs))


@pytest.fixture
def fake_price() -> Decimal:
    return Decimal("2.00")  # fake-model: 2 CNY in, 8 CNY out per million


def streamed(response: StreamingHttpResponse) -> bytes:
    """A streamed response's whole body, its iterator async (as the CSV's is) or not."""
    content = response.streaming_content
    if hasattr(content, "__aiter__"):

        async def gathered() -> bytes:
            return b"".join([part async for part in content])  # type: ignore[union-attr]

        return async_to_sync(gathered)()
    return b"".join(content)  # type: ignore[arg-type]
