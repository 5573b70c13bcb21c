"""Ledger values and job runs show in admin as translatable labels, not raw codes."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.functional import Promise

from apps.billing.models import JobRun, LedgerEntry
from apps.billing.services import job_run_record
from apps.providers.models import ChatModel
from tests.billing.conftest import settle, take
from tests.conftest import People

pytestmark = pytest.mark.django_db


def test_ledger_key_scope_and_entry_point_show_as_labels(people: People, client: Client, fake_model: ChatModel) -> None:
    settle(take(people.student, people.classroom, fake_model), 10, 20)  # credential_scope "none", entry "chat"
    entry = LedgerEntry.objects.get()
    assert (entry.credential_scope, entry.entry_point) == ("none", "chat")  # the stored codes stay
    client.force_login(people.admin)
    page = client.get(reverse("admin:billing_ledgerentry_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<td class="field-credential_scope">No key</td>' in page
    assert '<td class="field-entry_point">Chat</td>' in page
    assert "?entry_point__exact=chat" in page  # the filter offers the label, by its code


def test_job_runs_have_translatable_names(people: People, client: Client) -> None:
    job_run_record(name="rollup_usage", duration_ms=12, detail="hour rows 1, day rows 1")
    assert isinstance(JobRun._meta.verbose_name_plural, Promise)
    client.force_login(people.admin)
    page = client.get(reverse("admin:billing_jobrun_changelist"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Job runs" in page and "Last duration (ms)" in page and "Last duration ms" not in page
