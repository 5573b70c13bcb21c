"""The header on every page at phone size: one line, the navigation folded behind ⋯ with
tappable entries; and pages that used to be wider than a phone (the providers table)."""

from __future__ import annotations

from typing import Any

import pytest

from apps.providers.models import ChatModel
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 800}
PAGES = ["/", "/compare/", "/usage/", "/api-keys/", "/api/", "/learn/", "/learn/tokenizer/", "/providers/", "/classes/"]


def no_sideways_scroll(page: Any, width: int) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_header_is_one_line_on_a_phone_and_the_menu_opens_and_closes(
    people: People, fake_model: ChatModel, page_for: Any, locale: str
) -> None:
    page = page_for(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    log_in(page, "teacher_wang", PASSWORD)
    for url in PAGES:
        page.goto(url)
        header = page.locator(".topbar").bounding_box()
        assert header["height"] <= 60, (url, header)
        assert not page.locator("#site-nav").is_visible(), url
        assert no_sideways_scroll(page, PHONE["width"]), url
    page.goto("/classes/")
    page.click("#menu-toggle")
    assert page.get_attribute("#menu-toggle", "aria-expanded") == "true"
    nav = page.locator("#site-nav")
    assert nav.is_visible()
    for link in nav.locator("a").all():
        box = link.bounding_box()
        assert box["height"] >= 44, (link.inner_text(), box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], link.inner_text()
    screenshot(page, f"header-menu-open-phone-{locale}")
    page.keyboard.press("Escape")
    assert not nav.is_visible() and page.get_attribute("#menu-toggle", "aria-expanded") == "false"
    page.click("#menu-toggle")
    page.mouse.click(200, 600)  # a tap elsewhere closes it too
    assert not nav.is_visible()
    page.click("#menu-toggle")
    nav.get_by_role("link", name="学习" if locale == "zh-CN" else "Learn").click()
    page.wait_for_url("**/learn/")


def test_on_a_desktop_the_navigation_is_in_the_header(people: People, fake_model: ChatModel, page_for: Any) -> None:
    page = page_for("en-US", viewport=DESKTOP)
    log_in(page, "teacher_wang", PASSWORD)
    page.goto("/classes/")
    assert page.locator("#site-nav").is_visible() and not page.locator("#menu-toggle").is_visible()
    assert page.locator(".topbar").bounding_box()["height"] <= 64


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_the_providers_table_fits_the_screen(
    people: People, fake_model: ChatModel, page_for: Any, locale: str, size: str, viewport: Any
) -> None:
    page = page_for(locale, viewport=viewport)
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/providers/")
    assert no_sideways_scroll(page, viewport["width"])
    first = page.locator("table.providers tbody tr").first
    assert first.locator("strong").inner_text() != ""
    if size == "phone":  # one card per provider, each cell labelled
        assert page.locator("table.providers thead").is_hidden()
    screenshot(page, f"providers-{size}-{locale}")
