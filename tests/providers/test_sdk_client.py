"""The SDK client a turn gets: cheap to make, on the process's pooled HTTP client."""

from __future__ import annotations

from openai._base_client import get_platform

from apps.providers.client import Route, _sdk_client
from apps.providers.netguard import http_client_shared

ROUTE = Route(model_id=1, provider_slug="fakeai", model_name="fake-model", base_url="http://127.0.0.1:9/v1")


async def test_a_turns_client_knows_the_platform_read_once_so_its_request_needs_no_thread() -> None:
    # A fresh AsyncOpenAI reads the platform on a worker thread before its first request
    # (for its X-Stainless-OS header): on every turn, without this.
    first, second = await _sdk_client(ROUTE), await _sdk_client(ROUTE)

    assert first._platform is not None and second._platform is first._platform
    assert first.default_headers["X-Stainless-OS"] == str(get_platform())
    assert first._client is second._client is http_client_shared(user_supplied_url=False)
