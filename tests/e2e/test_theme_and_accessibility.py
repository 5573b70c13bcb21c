"""Every page in a real browser: the dark theme picked on one page follows the person to the
next page and to another browser, the system's dark is honoured when nothing was picked, and
axe-core (from node_modules) finds no serious or critical faults on the class, usage, API-key
and API pages in both languages, light and dark. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from apps.accounts.models import User
from apps.billing.services import usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import PASSWORD, People
from tests.e2e.conftest import ARTIFACTS, log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LOCALES = {"zh-CN": "zh-hans", "en-US": "en"}


def theme_of(page: Any) -> str:
    return page.evaluate("document.documentElement.dataset.theme")


def theme_saved(user: User, theme: str, timeout: float = 10.0) -> bool:
    """The toggle saves in the background: wait for the account to have it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        user.refresh_from_db()
        if user.theme == theme:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def used(people: People, fake_model: ChatModel) -> People:
    """A class with a quota and a few settled requests, so the usage pages have rows and a chart."""
    policy_set(people.classroom, period="month", student_token_limit=50_000, student_cost_limit=Decimal("2.00"))
    settle(take(people.student, people.classroom, fake_model, prompt=1200, max_tokens=800), 1200, 640)
    settle(take(people.classmate, people.classroom, fake_model, prompt=300, max_tokens=400, entry_point="api"), 300, 90)
    usage_rollup(since=timezone.now() - timezone.timedelta(days=2))
    return people


def test_dark_picked_on_one_page_follows_to_other_pages_and_browsers(people: People, page_for: Any) -> None:
    page = page_for("en-US", color_scheme="light")
    log_in(page, "teacher_wang", PASSWORD)
    page.goto("/classes/")
    assert theme_of(page) == "light"
    page.click("#theme-toggle")
    assert theme_of(page) == "dark"
    assert page.get_attribute("html", "data-theme-choice") == "dark"
    assert theme_saved(people.teacher, "dark")

    page.goto(f"/classes/{people.classroom.pk}/usage/")
    page.reload()
    assert theme_of(page) == "dark"

    # Another browser: nothing in its localStorage, a light system, and still dark.
    elsewhere = page_for("en-US", color_scheme="light")
    log_in(elsewhere, "teacher_wang", PASSWORD)
    elsewhere.goto("/api/")
    assert theme_of(elsewhere) == "dark"
    assert elsewhere.get_attribute("html", "data-theme-choice") == "dark"

    # Back to light, from that browser; the first one follows on its next page.
    elsewhere.click("#theme-toggle")
    assert theme_saved(people.teacher, "light")
    page.goto("/classes/")
    assert theme_of(page) == "light"


def test_the_systems_dark_is_honoured_when_nothing_was_picked(people: People, page_for: Any) -> None:
    dark = page_for("en-US", color_scheme="dark")
    log_in(dark, "xiaoming", PASSWORD)
    dark.goto("/api/")
    assert theme_of(dark) == "dark"
    assert dark.get_attribute("#theme-toggle", "title") == "Theme: as this device"
    light = page_for("en-US", color_scheme="light")
    light.goto("/accounts/login/")  # signed out: the system's choice too
    assert theme_of(light) == "light"


def test_the_toggle_goes_round_to_following_the_device_again(people: People, page_for: Any) -> None:
    """Light device: as the device -> dark -> light (kept, whatever the device) -> as the
    device again, each saved on the account; following the device, the page changes with it."""
    page = page_for("zh-CN", color_scheme="light")
    log_in(page, "xiaoming", PASSWORD)
    page.goto("/usage/")
    assert (theme_of(page), page.get_attribute("html", "data-theme-choice")) == ("light", "system")
    for shown, chosen in [("dark", "dark"), ("light", "light"), ("light", "system")]:
        page.click("#theme-toggle")
        assert (theme_of(page), page.get_attribute("html", "data-theme-choice")) == (shown, chosen)
        assert theme_saved(people.student, chosen)
    assert page.get_attribute("#theme-toggle", "title") == "主题：跟随本设备"
    page.emulate_media(color_scheme="dark")  # the device switches at dusk
    deadline = time.monotonic() + 5
    while theme_of(page) != "dark" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert theme_of(page) == "dark"
    page.reload()
    assert (theme_of(page), page.get_attribute("html", "data-theme-choice")) == ("dark", "system")


@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_pages_in_the_dark_fit_and_are_screenshotted(used: People, page_for: Any, size: str, viewport: Any) -> None:
    used.teacher.theme = User.Theme.DARK
    used.teacher.save(update_fields=["theme"])
    page = page_for("zh-CN", viewport=viewport, color_scheme="light")
    log_in(page, "teacher_wang", PASSWORD)
    for name, url in [
        ("classes", "/classes/"),
        ("class", f"/classes/{used.classroom.pk}/"),
        ("class-usage", f"/classes/{used.classroom.pk}/usage/"),
        ("api", "/api/"),
        ("learn", "/learn/"),
    ]:
        page.goto(url)
        assert theme_of(page) == "dark"
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1, url
        screenshot(page, f"dark-{name}-{size}")
        page.screenshot(path=str(ARTIFACTS / f"dark-{name}-{size}-top.png"))  # the first screen, as seen


def axe_serious(page: Any) -> list[Any]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        (violation["id"], [(node["target"], node["failureSummary"]) for node in violation["nodes"]][:3])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_teacher_and_student_pages_have_no_serious_accessibility_faults(
    used: People, page_for: Any, locale: str, theme: str
) -> None:
    if not AXE.exists():
        pytest.fail("axe-core is missing: `make test-setup` installs it (npm ci)")
    found = {}
    # The strict CSP refuses injected scripts: these contexts let axe in.
    teacher = page_for(locale, bypass_csp=True, color_scheme=theme, viewport=DESKTOP)
    log_in(teacher, "teacher_wang", PASSWORD)
    classroom = used.classroom.pk
    for url in ["/classes/", f"/classes/{classroom}/", f"/classes/{classroom}/usage/", f"/classes/{classroom}/roster/"]:
        teacher.goto(url)
        assert theme_of(teacher) == theme
        found[url] = axe_serious(teacher)
    student = page_for(locale, bypass_csp=True, color_scheme=theme)
    log_in(student, "xiaoming", PASSWORD)
    for url in ["/usage/", "/api-keys/", "/api/", "/learn/tokenizer/"]:
        student.goto(url)
        assert student.get_attribute("html", "lang") == LOCALES[locale]
        found[url] = axe_serious(student)
    screenshot(student, f"a11y-api-{theme}-{locale}")
    assert {url: faults for url, faults in found.items() if faults} == {}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_code_is_highlighted_readably_in_both_themes(people: People, catalog: None, page_for: Any, theme: str) -> None:
    """The API guide and a provider page show code: pygments.css in light, pygments-dark.css in
    dark, and axe's contrast check passes on both."""
    page = page_for("en-US", bypass_csp=True, color_scheme=theme, viewport=DESKTOP)
    log_in(page, "xiaoming", PASSWORD)
    # The API guide's code blocks are plain (on the page's panel colour); the provider pages' are pygments'.
    for url, selector, dark in [
        ("/api/", ".code-block", "rgb(22, 27, 34)"),
        ("/providers/deepseek/", ".highlight", "rgb(13, 17, 23)"),
    ]:
        page.goto(url)
        assert page.locator(selector).count() > 0, url
        background = page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).backgroundColor")
        assert (background == dark) == (theme == "dark"), (url, background)
        assert axe_serious(page) == [], url
    page.locator(".highlight").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"code-{theme}.png"))
