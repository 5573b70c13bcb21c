"""403, 404, 400 and 500 pages are the site's own: translated, in its look, and the 500
page renders with no request context at all (no user, no database)."""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import include, path, reverse
from django.utils import translation
from django.views.defaults import server_error

from tests.conftest import People


def _fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


def _suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("odd input")


# The site's URLs plus two that fail, for the tests marked with this module as urlconf.
urlpatterns = [
    path("test-fails/", _fails),
    path("test-suspicious/", _suspicious),
    path("", include("webchat.urls")),
]


def in_site_look(page: str) -> bool:
    return '<header class="topbar">' in page and "/static/css/app.css" in page


@pytest.mark.django_db
def test_a_student_opening_the_keys_page_gets_the_sites_403_page(people: People, client: Client) -> None:
    client.force_login(people.student)
    response = client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 403
    assert in_site_look(page) and '<nav class="topnav"' in page
    assert "You may not open this page" in page and "403 Forbidden" not in page
    assert 'href="%s"' % reverse("home") in page
    assert 'lang="zh-hans"' in client.get(reverse("keys"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["teacher", "nobody"])
def test_a_missing_page_is_the_sites_404_page(people: People, client: Client, who: str) -> None:
    if who == "teacher":
        client.force_login(people.teacher)
        url = reverse("class-settings", args=[people.other_classroom.pk])  # someone else's class
    else:
        url = "/no-such-page/"
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 404
    assert in_site_look(page) and "Page not found" in page
    assert "No such class" not in page  # the reason given to Http404 is not shown


def test_the_500_page_needs_no_request_context_and_no_database() -> None:
    # No django_db mark: any database access here would fail the test.
    with translation.override("en"):
        response = server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500
    assert in_site_look(page) and "Something went wrong on our side" in page


@pytest.mark.django_db
@pytest.mark.urls("tests.test_error_pages")
def test_a_crash_shows_the_sites_500_page_in_the_users_language(client: Client) -> None:
    client.raise_request_exception = False
    response = client.get("/test-fails/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 500
    assert in_site_look(response.content.decode()) and "a bug" not in response.content.decode()
    zh = client.get("/test-fails/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert 'lang="zh-hans"' in zh


@pytest.mark.django_db
@pytest.mark.urls("tests.test_error_pages")
def test_a_bad_request_is_the_sites_400_page(client: Client) -> None:
    response = client.get("/test-suspicious/", HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 400
    assert in_site_look(page) and "odd input" not in page
