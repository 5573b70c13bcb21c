"""The quota page's form shows money as typed and names its empty student choice."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from tests.billing.conftest import policy_set
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_money_is_shown_without_ten_decimal_places(people: People, client: Client) -> None:
    policy_set(people.classroom, student_cost_limit=Decimal("2.00"), class_cost_pool=Decimal("20"))
    client.force_login(people.teacher)
    page = client.get(reverse("class-quota", args=[people.classroom.pk]), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="student_cost_limit" value="2"' in page
    assert 'name="class_cost_pool" value="20"' in page
    assert "2.0000000000" not in page
    assert '<option value="" selected>Choose a student</option>' in page
    assert "---------" not in page
