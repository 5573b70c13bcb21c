"""In a real browser: a student's own usage page and a teacher's class usage page, on a
phone and on a desktop, in zh-hans and en. Wide tables scroll inside their box; the page
itself never scrolls sideways. Screenshots go to test-artifacts/."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from apps.billing.services import ledger_correct, usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# The page's language, and a label of its summary in that language.
LOCALES = {"zh-CN": ("zh-hans", "请求数"), "en-US": ("en", "Requests")}


@pytest.fixture
def used(people: People, fake_model: ChatModel) -> People:
    """A few requests of this period: chat and API, one stopped, one corrected."""
    policy_set(people.classroom, period="month", student_token_limit=50_000, student_cost_limit=Decimal("2.00"))
    settle(take(people.student, people.classroom, fake_model, prompt=1200, max_tokens=800), 1200, 640)
    settle(take(people.student, people.classroom, fake_model, prompt=300, max_tokens=400, entry_point="api"), 300, 120)
    stopped = settle(
        take(people.student, people.classroom, fake_model, prompt=900, max_tokens=900), 900, 35, status="stopped"
    )
    settle(take(people.classmate, people.classroom, fake_model, prompt=50, max_tokens=50, entry_point="api"), 50, 20)
    ledger_correct(
        entry=stopped, prompt_tokens=0, completion_tokens=-5, cost_billing=Decimal("-0.00004"), note="recounted"
    )
    usage_rollup(since=timezone.now() - timezone.timedelta(days=2))
    return people


def page_width(page: Any) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_my_usage_page_fits_phone_and_desktop(
    used: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = page_for(locale, viewport=viewport)
    log_in(page, "xiaoming", PASSWORD)
    page.wait_for_selector("#quota-details")
    screenshot(page, f"chat-meter-{size}-{locale}")
    page.click("#quota-details")  # the meter's link
    page.wait_for_selector("#my-ledger")
    language, heading = LOCALES[locale]
    assert page.get_attribute("html", "lang") == language
    assert page.inner_text("#usage-summary dt >> nth=0") == heading
    assert page.locator("#my-ledger tbody tr").count() == 4  # three requests and a correction
    assert "API" in page.inner_text("#my-ledger")
    assert page.locator("#usage-chart .uchart-day").count() >= 28  # every day of the period
    assert page_width(page) <= viewport["width"], "the page scrolls sideways"
    # Every cell on screen: one card per request on a phone, every column on a desktop.
    rights = page.eval_on_selector_all("#my-ledger td", "cells => cells.map(c => c.getBoundingClientRect().right)")
    assert max(rights) <= viewport["width"], "a request's figures are off screen"
    screenshot(page, f"my-usage-{size}-{locale}")


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_class_usage_page_fits_phone_and_desktop(
    used: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = page_for(locale, viewport=viewport)
    log_in(page, "teacher_wang", PASSWORD)
    page.goto(f"/classes/{used.classroom.pk}/usage/")
    page.wait_for_selector("#student-usage")
    assert page.inner_text("#entry-point-usage tbody tr:nth-child(2) td:nth-child(2)") == "2"  # API requests
    assert page_width(page) <= viewport["width"], "the page scrolls sideways"
    screenshot(page, f"class-usage-{size}-{locale}")
