"""Every page of a class carries the same sub-navigation, with the page shown marked; the
class list links each class's pages, the API one included."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import People

pytestmark = pytest.mark.django_db

PAGES = ["class-settings", "class-roster", "class-models", "class-api", "class-usage", "class-quota"]


@pytest.mark.parametrize("current", PAGES)
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_each_class_page_links_all_of_them_and_marks_itself(
    people: People, client: Client, current: str, language: str
) -> None:
    client.force_login(people.teacher)
    addresses = [reverse(name, args=[people.classroom.pk]) for name in PAGES]
    page = client.get(reverse(current, args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert page.count('<nav class="class-nav"') == 1
    nav = page[page.index('<nav class="class-nav"') : page.index("</nav>", page.index('<nav class="class-nav"'))]
    assert re.findall(r'<li><a href="([^"]+)"', nav) == addresses
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', nav) == [reverse(current, args=[people.classroom.pk])]
    assert "css/teacher.css" in page


def test_the_class_list_links_every_page_of_a_class(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    page = client.get(reverse("classes")).content.decode()
    for name in PAGES:
        assert f'href="{reverse(name, args=[people.classroom.pk])}"' in page


def test_the_models_page_names_its_empty_default(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    page = client.get(reverse("class-models", args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert re.search(r'<option value=""[^>]*>No default \(the first in the list\)</option>', page)
    assert "---------" not in page
    assert 'class="save-bar"' in page
