"""What the /v1 tests share: a student's key and the openai SDK pointed at the live app."""

from __future__ import annotations

import openai
import pytest

from apps.gateway.services import api_key_create
from tests.conftest import LiveServer, People

MODEL = "fakeai/fake-model"


def client_for(live_asgi: LiveServer, key: str) -> openai.OpenAI:
    """The openai SDK as a student uses it, against this site's /v1 (no retries: each call
    is one request)."""
    return openai.OpenAI(base_url=live_asgi.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def key(people: People) -> str:
    """A personal key of the student's."""
    return api_key_create(user=people.student, name="test")[1]
