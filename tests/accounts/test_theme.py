"""The header's theme toggle: the choice is kept on the account and rendered on every page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from apps.accounts.models import User
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_a_student_picks_dark_and_it_is_kept_on_the_account(people: People, client: Client) -> None:
    client.force_login(people.student)
    response = client.post(reverse("theme-set"), {"theme": "dark"})
    assert response.status_code == 204
    people.student.refresh_from_db()
    assert people.student.theme == User.Theme.DARK


def test_the_chosen_theme_is_rendered_on_another_page(people: People, client: Client) -> None:
    client.force_login(people.teacher)
    client.post(reverse("theme-set"), {"theme": "dark"})
    html = client.get(reverse("classes")).content.decode()
    assert 'data-theme-choice="dark"' in html
    assert 'data-theme="dark"' in html


def test_system_leaves_the_theme_to_the_browser(people: People, client: Client) -> None:
    client.force_login(people.student)
    html = client.get(reverse("api-guide")).content.decode()
    assert 'data-theme-choice="system"' in html
    assert 'data-theme="' not in html.split("<head>")[0]


def test_every_page_has_the_toggle_and_the_dark_code_colours(people: People, client: Client) -> None:
    client.force_login(people.student)
    html = client.get(reverse("api-guide")).content.decode()
    assert 'id="theme-toggle"' in html
    assert "pygments-dark.css" in html
    assert "js/theme.js" in html


def test_an_unknown_theme_is_refused_and_changes_nothing(people: People, client: Client) -> None:
    client.force_login(people.student)
    response = client.post(reverse("theme-set"), {"theme": "purple"})
    assert response.status_code == 400
    people.student.refresh_from_db()
    assert people.student.theme == User.Theme.SYSTEM


def test_the_theme_endpoint_wants_post(people: People, client: Client) -> None:
    client.force_login(people.student)
    assert client.get(reverse("theme-set")).status_code == 405


def test_signed_out_the_theme_is_not_saved(client: Client) -> None:
    response = client.post(reverse("theme-set"), {"theme": "dark"})
    assert response.status_code == 302


def test_the_theme_endpoint_checks_csrf(people: People) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(people.student)
    assert client.post(reverse("theme-set"), {"theme": "dark"}).status_code == 403
