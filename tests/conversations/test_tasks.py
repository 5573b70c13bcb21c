"""The periodic job that settles what dead workers left: scheduled, and runnable by hand."""

from __future__ import annotations

from io import StringIO

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command

from apps.billing.models import JobRun


def test_every_beat_entry_names_a_registered_task_and_expire_holds_is_the_conversations_one() -> None:
    from webchat.celery import app

    # What a worker does at start (without its model checks): import each app's tasks.py.
    app.loader.autodiscover_tasks([config.name for config in django_apps.get_app_configs()])
    for name, entry in app.conf.beat_schedule.items():
        assert entry["task"] in app.tasks, name
        assert 0 < entry["options"]["expires"] < entry["schedule"], name
    assert app.conf.beat_schedule["expire-holds"]["task"] == "conversations.expire_holds"


@pytest.mark.django_db
def test_the_expire_holds_command_runs_the_job_and_records_it() -> None:
    out = StringIO()
    call_command("expire_holds", stdout=out)
    assert out.getvalue().strip() == "settled: 0"
    assert JobRun.objects.get(name="expire_holds").last_detail == "0 settled"
