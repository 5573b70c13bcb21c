"""The class usage chart: every day of the range, an axis with round numbers, tokens
stacked by model and cost per day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from apps.billing.charts import MAX_SERIES, nice_ceiling, usage_chart
from apps.billing.selectors import ModelDayUsage
from apps.billing.services import usage_rollup
from apps.providers.models import ChatModel
from tests.billing.conftest import policy_set, settle, take
from tests.conftest import People

pytestmark = pytest.mark.django_db


def row(day: int, model_id: int, tokens: int, cost: str = "0.01") -> ModelDayUsage:
    return {
        "day": date(2026, 3, day),
        "model_id": model_id,
        "provider": "p",
        "model": f"m{model_id}",
        "label": f"Model {model_id}",
        "tokens": tokens,
        "cost": Decimal(cost),
    }


def test_axis_tops_are_round_numbers() -> None:
    assert [nice_ceiling(v) for v in (0, 1, 3, 7, 1500, 2600, 90_000, 0.0012)] == [
        1,
        1,
        5,
        10,
        2000,
        5000,
        100_000,
        0.002,
    ]


def test_every_day_is_drawn_with_stacked_models_and_the_cost_line() -> None:
    chart = usage_chart(
        first=date(2026, 3, 1),
        last=date(2026, 3, 10),
        rows=[row(2, 1, 600, "0.02"), row(2, 2, 400), row(5, 2, 1000, "0.04")],
        other_label="Other",
    )

    assert len(chart["days"]) == 10 and chart["width"] == 10
    assert chart["token_ticks"] == [1000, 500, 0] and chart["cost_ticks"] == [Decimal("0.05"), Decimal("0.025"), 0]
    day2 = chart["days"][1]
    # Model 2 used more in total, so it is series 0 and drawn first, at the bottom.
    assert [(s["series"], s["y"], s["height"]) for s in day2["segments"]] == [(0, 0.0, 48.0), (1, 48.0, 72.0)]
    assert (day2["tokens"], day2["cost"]) == (1000, Decimal("0.03"))
    assert chart["days"][0]["segments"] == [] and chart["days"][0]["tokens"] == 0
    assert chart["days"][1]["cost_y"] == 72.0  # 0.03 of 0.05 at 120 high
    assert chart["days"][0]["cost_y"] is None  # no cost, no marker
    assert [s["label"] for s in chart["series"]] == ["Model 2", "Model 1"]
    labelled = [day["day"].day for day in chart["days"] if day["label"]]
    assert labelled == [1, 3, 5, 7, 9]  # at most seven labels under the plot


def test_models_beyond_the_colours_are_other_models_together() -> None:
    rows = [row(1, model_id, 100 * model_id) for model_id in range(1, MAX_SERIES + 3)]

    chart = usage_chart(first=date(2026, 3, 1), last=date(2026, 3, 1), rows=rows, other_label="Other")

    assert len(chart["series"]) == MAX_SERIES + 1
    other = chart["series"][-1]
    assert (other["label"], other["tokens"]) == ("Other", 300)  # models 1 and 2: the two least used
    assert chart["total_tokens"] == sum(100 * m for m in range(1, MAX_SERIES + 3))


def test_a_day_whose_corrections_outweigh_its_use_draws_no_bar() -> None:
    chart = usage_chart(
        first=date(2026, 3, 1), last=date(2026, 3, 2), rows=[row(1, 1, 500), row(2, 1, -100)], other_label="Other"
    )
    assert chart["days"][1]["segments"] == []


def test_the_class_page_draws_every_day_an_axis_and_a_legend(
    people: People, fake_model: ChatModel, settings: Any
) -> None:
    policy_set(people.classroom, student_token_limit=100_000)
    for day in (3, 4):
        with time_machine.travel(datetime(2026, 3, day, 2, 0, tzinfo=UTC), tick=False):
            settle(take(people.student, people.classroom, fake_model, prompt=1000, max_tokens=500), 1000, 500)
    usage_rollup(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 3, 8, tzinfo=UTC))
    teacher = Client()
    teacher.force_login(people.teacher)

    page = teacher.get(
        reverse("class-usage", args=[people.classroom.pk]),
        {"start": "2026-03-01", "end": "2026-03-07"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()

    assert page.count('class="uchart-day"') == 7
    assert (
        '<div class="uchart-axis uchart-axis-tokens" aria-hidden="true"><span>2,000</span><span>1,000</span><span>0</span>'
        in page
    )
    legend = page[page.index("uchart-legend") :]
    assert "Fake model" in legend and "3000 tokens, 0.0120 CNY" in legend  # the legend: the model's totals
    assert "03-01" in page and "03-07" in page
    assert "Left axis: tokens per day." in page and page.count('<line class="uchart-cost"') == 2 + 1


def test_a_range_without_use_still_draws_its_days(people: People) -> None:
    teacher = Client()
    teacher.force_login(people.teacher)

    page = teacher.get(
        reverse("class-usage", args=[people.classroom.pk]),
        {"start": "2026-03-01", "end": "2026-03-31"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()

    assert page.count('class="uchart-day"') == 31 and "No usage in this range." in page


@pytest.mark.parametrize(("tokens", "ticks"), [(0, [2, 1, 0]), (4, [10, 5, 0]), (20, [20, 10, 0]), (24, [50, 25, 0])])
def test_the_token_axis_is_labelled_in_whole_tokens(tokens: int, ticks: list[int]) -> None:
    """An empty chart's axis read 1 / 0.5000 / 0 tokens."""
    rows = [row(2, 1, tokens)] if tokens else []
    chart = usage_chart(first=date(2026, 3, 1), last=date(2026, 3, 3), rows=rows, other_label="Other")
    assert chart["token_ticks"] == ticks and all(isinstance(tick, int) for tick in chart["token_ticks"])


@pytest.mark.parametrize(
    ("zone", "moments", "days"),
    [
        # Shanghai (UTC+8 all year): 15:59:59 UTC is the 3rd, 16:00 UTC already the 4th.
        (
            "Asia/Shanghai",
            [datetime(2026, 3, 3, 15, 59, 59, tzinfo=UTC), datetime(2026, 3, 3, 16, 0, tzinfo=UTC)],
            [date(2026, 3, 3), date(2026, 3, 4)],
        ),
        # Berlin's summer time starts on 29 March: the range crosses it (the per-row path).
        (
            "Europe/Berlin",
            [datetime(2026, 3, 27, 22, 59, tzinfo=UTC), datetime(2026, 3, 30, 22, 30, tzinfo=UTC)],
            [date(2026, 3, 27), date(2026, 3, 31)],
        ),
    ],
    ids=["constant-offset", "across-summer-time"],
)
def test_usage_is_counted_on_the_local_day_it_happened(
    people: People, fake_model: ChatModel, settings: Any, zone: str, moments: list[datetime], days: list[date]
) -> None:
    """A day is the site's day, whichever way it is worked out (on SQLite, the offset added
    in SQL when it holds over the whole range)."""
    from django.utils import timezone

    from apps.billing.selectors import classroom_daily_usage_by_model, user_daily_usage

    settings.TIME_ZONE = zone
    policy_set(people.classroom, student_token_limit=100_000)
    for moment in moments:
        with time_machine.travel(moment, tick=False):
            settle(take(people.student, people.classroom, fake_model, prompt=100, max_tokens=100), 100, 50)
    with timezone.override(zone):
        since, until = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
        chart = classroom_daily_usage_by_model(classroom=people.classroom, since=since, until=until)
        own = user_daily_usage(user=people.student, start=since, end=until)
    assert [row["day"] for row in chart] == days
    assert [day["day"] for day in own if day["requests"]] == days
