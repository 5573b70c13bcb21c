"""A teacher's class pages in a real browser, on a phone (390x844) and a desktop (1366x800),
in zh-CN and en-US: one sub-navigation on every page of a class with the page shown marked,
tappable form rows (tick boxes beside their labels, rows at least 44px tall), the models
page's Save always on screen, and the usage page's figures agreeing and readable without
sideways scrolling. Screenshots go to test-artifacts/."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from apps.providers.models import ChatModel
from tests.billing.conftest import settle, take
from tests.conftest import People
from tests.e2e.conftest import screenshot
from tests.e2e.test_teacher_pages import DESKTOP, LOCALES, PHONE, signed_in, teaching  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = [("phone", PHONE), ("desktop", DESKTOP)]
# Each page of a class: its address and the tab marked as the page shown.
CLASS_PAGES = {
    "settings": "/classes/{pk}/",
    "roster": "/classes/{pk}/roster/",
    "models": "/classes/{pk}/models/",
    "api": "/classes/{pk}/api/",
    "usage": "/classes/{pk}/usage/",
    "quota": "/classes/{pk}/quota/",
}
TOUCH = 44  # px: the smallest comfortable touch target


@pytest.fixture
def in_use(teaching: People, fake_model: ChatModel) -> People:  # noqa: F811 (the imported fixture)
    """Teaching's class, plus requests made after the last rollup (chat and API)."""
    for _ in range(2):
        settle(take(teaching.student, teaching.classroom, fake_model, prompt=100, max_tokens=50), 100, 50)
    settle(take(teaching.student, teaching.classroom, fake_model, prompt=80, max_tokens=40, entry_point="api"), 80, 40)
    return teaching


def box(page: Any, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def no_sideways_scroll(page: Any, viewport: dict[str, int], name: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{name} scrolls sideways: {width} px at {viewport['width']} px"


def teacher_page(page_for: Any, locale: str, viewport: dict[str, int], path: str = "") -> Any:
    """A browser page at `viewport` in `locale`, signed in as the class's teacher, at `path`."""
    page = page_for(locale, viewport=viewport)
    signed_in(page, "teacher_wang")
    if path:
        page.goto(path)
    return page


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_every_class_page_has_the_same_navigation_with_the_page_marked(
    in_use: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = teacher_page(page_for, locale, viewport)
    pk = in_use.classroom.pk
    addresses = [url.format(pk=pk) for url in CLASS_PAGES.values()]
    for name, url in CLASS_PAGES.items():
        page.goto(url.format(pk=pk))
        nav = page.locator("nav.class-nav")
        expect(nav).to_be_visible()
        assert page.get_attribute("html", "lang") == LOCALES[locale]
        links = nav.locator("ul a")
        assert [links.nth(i).get_attribute("href") for i in range(links.count())] == addresses
        current = nav.locator("a[aria-current=page]")
        assert current.count() == 1 and current.get_attribute("href") == url.format(pk=pk), name
        for i in range(links.count()):
            link = links.nth(i).bounding_box()
            assert link["height"] >= TOUCH, f"{name}: a tab is {link['height']} px tall"
            assert link["x"] >= 0 and link["x"] + link["width"] <= viewport["width"], f"{name}: a tab is off screen"
        no_sideways_scroll(page, viewport, name)
        screenshot(page, f"teacher-phone-{name}-{size}-{locale}")
    # The class list's card leads to every page too, the API one included.
    page.goto("/classes/")
    row = page.locator(f"tr[data-classroom='{pk}']")
    for url in addresses[1:]:
        expect(row.locator(f"a[href='{url}']")).to_have_count(1)
    no_sideways_scroll(page, viewport, "classes")
    screenshot(page, f"teacher-phone-classes-{size}-{locale}")


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_the_class_settings_form_has_tick_boxes_beside_their_labels_and_stacked_fields(
    in_use: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = teacher_page(page_for, locale, viewport, f"/classes/{in_use.classroom.pk}/")
    rows = page.locator("#class-settings-form .check-row")
    assert rows.count() == 2
    for i in range(rows.count()):
        row = rows.nth(i)
        line, tick, text = row.bounding_box(), row.locator("input").bounding_box(), row.locator("span").bounding_box()
        assert line["height"] >= TOUCH
        assert tick["width"] >= 18 and tick["height"] >= 18
        assert text["x"] > tick["x"] + tick["width"] - 1, "the label is beside its box"
        assert text["y"] < tick["y"] + tick["height"], "the label starts on the box's line"
    # Tapping the words ticks the box.
    first = rows.nth(0).locator("input")
    before = first.is_checked()
    rows.nth(0).locator("span").click()
    assert first.is_checked() != before
    # Every field's label sits above its input, the short ones as well.
    for form in ("#class-settings-form", "#join-code-form", "#co-teacher-form"):
        fields = page.locator(f"{form} .field:not(.check-field)")
        for i in range(fields.count()):
            label, control = (
                fields.nth(i).locator("label").first,
                fields.nth(i).locator("input, textarea, select").first,
            )
            assert label.bounding_box()["y"] + label.bounding_box()["height"] <= control.bounding_box()["y"] + 1
            assert control.bounding_box()["height"] >= TOUCH - 4
    # The archive button's explanation comes before it, not wrapped under it.
    hint, button = box(page, "#archive-explained"), box(page, "#archive button[type=submit]")
    assert hint["y"] + hint["height"] <= button["y"]
    no_sideways_scroll(page, viewport, "class settings")
    screenshot(page, f"teacher-phone-settings-form-{size}-{locale}")


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_the_models_page_has_tappable_rows_and_save_always_on_screen(
    in_use: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = teacher_page(page_for, locale, viewport, f"/classes/{in_use.classroom.pk}/models/")
    save = page.locator("#class-models-save button[type=submit]")

    def save_on_screen() -> None:
        found = save.bounding_box()
        assert found is not None
        assert 0 <= found["y"] and found["y"] + found["height"] <= viewport["height"], "Save is off screen"
        assert found["height"] >= TOUCH

    save_on_screen()  # on opening the page
    rows = page.locator(".model-choice")
    assert rows.count() >= 2
    for i in range(rows.count()):
        assert rows.nth(i).bounding_box()["height"] >= TOUCH
    # Halfway down the list, Save is still on screen; tapping a row's name ticks its box.
    middle = rows.nth(rows.count() // 2)
    middle.scroll_into_view_if_needed()
    save_on_screen()
    tick = middle.locator("input[type=checkbox]")
    before = tick.is_checked()
    middle.locator("strong").click()
    assert tick.is_checked() != before
    middle.locator("strong").click()
    # The default model's empty choice says what it means.
    empty = page.locator("#id_default_model option[value='']").inner_text()
    assert "-----" not in empty and len(empty) > 4
    no_sideways_scroll(page, viewport, "models")
    screenshot(page, f"teacher-phone-models-{size}-{locale}")
    save.click()
    page.wait_for_selector(".flash")
    save_on_screen()
    screenshot(page, f"teacher-phone-models-saved-{size}-{locale}")


@pytest.mark.parametrize("locale", list(LOCALES))
def test_the_roster_buttons_keep_clear_of_the_import_card(in_use: People, page_for: Any, locale: str) -> None:
    page = teacher_page(page_for, locale, PHONE, f"/classes/{in_use.classroom.pk}/roster/")
    button, card = box(page, ".roster-actions button"), box(page, "#roster-import")
    card_top = page.locator("#roster-import").evaluate("form => form.closest('.card').getBoundingClientRect().top")
    assert card_top - (button["y"] + button["height"]) >= 12, "the reset button touches the import card"
    assert button["height"] >= TOUCH and card["y"] > card_top
    no_sideways_scroll(page, PHONE, "roster")


@pytest.mark.parametrize("locale", list(LOCALES))
@pytest.mark.parametrize(("size", "viewport"), SIZES)
def test_the_usage_page_agrees_with_itself_and_shows_every_column(
    in_use: People, page_for: Any, locale: str, size: str, viewport: dict[str, int]
) -> None:
    page = teacher_page(page_for, locale, viewport, f"/classes/{in_use.classroom.pk}/usage/")
    table = page.locator("#student-usage")
    xiaoming = table.locator("tbody tr", has_text="xiaoming")
    requests = int(xiaoming.locator("td.requests").inner_text().split()[-1])
    chat = int(xiaoming.locator("td.chat-requests").inner_text().split()[-1])
    api = int(xiaoming.locator("td.api-requests").inner_text().split()[-1])
    assert (requests, chat, api) == (4, 3, 1)  # one rolled up, three after the rollup
    assert page.inner_text("[data-stat=requests]") == "5"  # xiaohong's one too
    entry = page.locator("#entry-point-usage tbody td.num")
    assert [entry.nth(i).inner_text() for i in range(2)] == ["4", "1"]
    assert page.locator("#model-usage tbody tr").count() == 1
    assert page.locator("#top-users li").count() == 2
    # Every cell of the students' table is on screen, nothing cut off at the right.
    cells = table.locator("td")
    for i in range(cells.count()):
        cell = cells.nth(i).bounding_box()
        assert cell["x"] >= 0 and cell["x"] + cell["width"] <= viewport["width"] + 0.5
    no_sideways_scroll(page, viewport, "usage")
    screenshot(page, f"teacher-phone-usage-{size}-{locale}")


@pytest.mark.parametrize("locale", list(LOCALES))
def test_the_class_pages_in_the_dark_theme_on_a_phone(in_use: People, page_for: Any, locale: str) -> None:
    page = page_for(locale, viewport=PHONE, color_scheme="dark")
    signed_in(page, "teacher_wang")
    for name, url in CLASS_PAGES.items():
        page.goto(url.format(pk=in_use.classroom.pk))
        expect(page.locator("nav.class-nav a[aria-current=page]")).to_have_count(1)
        no_sideways_scroll(page, PHONE, name)
        screenshot(page, f"teacher-phone-{name}-dark-phone-{locale}")


def test_the_roster_tick_boxes_are_big_enough_to_tap(in_use: People, page_for: Any) -> None:
    page = teacher_page(page_for, "zh-CN", PHONE, f"/classes/{in_use.classroom.pk}/roster/")
    target = page.locator("#roster .pick-target").first
    found = target.bounding_box()
    assert found["width"] >= TOUCH and found["height"] >= TOUCH
    target.click()
    assert target.locator("input").is_checked()
    no_sideways_scroll(page, PHONE, "roster")
    screenshot(page, "teacher-phone-roster-ticked-phone-zh-CN")
