"""The chat page's scripts and stylesheets stay small: under 250 KB together, gzip-compressed
(what a school's slow connection carries)."""

from __future__ import annotations

import gzip
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from tests.conftest import People

LIMIT = 250 * 1024


@pytest.mark.django_db
def test_the_chat_pages_scripts_and_styles_are_under_250_kb_compressed(people: People, client: Client) -> None:
    client.force_login(people.student)
    page = client.get(reverse("home")).content.decode()
    assets = re.findall(r'<(?:script[^>]*\ssrc|link[^>]*rel="stylesheet"[^>]*\shref)="/static/([^"]+)"', page)
    assert any("markdown-it" in asset for asset in assets) and any("purify" in asset for asset in assets)
    total = 0
    for asset in assets:
        path = finders.find(asset)
        assert path, f"{asset} is missing (make runs npm ci and the assets target)"
        with open(path, "rb") as file:
            total += len(gzip.compress(file.read(), compresslevel=9))
    print(f"chat page: {len(assets)} files, {total / 1024:.1f} KB gzip")
    assert total < LIMIT
