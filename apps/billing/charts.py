"""The class usage chart's geometry: every day of a range, tokens stacked by model, cost
as a marker per day, and round numbers for the axes. Drawn as server-side SVG by
templates/billing/_usage_chart.html (no script; sizes are attributes, which the CSP allows
where inline styles are not)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import TypedDict

from .selectors import ModelDayUsage

CHART_HEIGHT = 120  # the plot's height in SVG units; one unit of width per day
MAX_SERIES = 5  # models drawn in their own colour; the rest are "other models" together
MAX_DAY_LABELS = 7  # day labels under the plot, so they never overlap on a phone


class Segment(TypedDict):
    series: int  # index into UsageChart.series: the colour
    y: float
    height: float


class ChartDay(TypedDict):
    day: date
    index: int
    label: bool  # the day's date is written under the plot
    tokens: int
    cost: Decimal
    segments: list[Segment]
    cost_y: float | None  # the day's cost marker (right axis); None on a day without cost
    parts: list[tuple[str, int, Decimal]]  # (model label, tokens, cost), for the day's tooltip


class Series(TypedDict):
    index: int
    label: str
    route: str  # provider/model, or "" for the other models together
    tokens: int
    cost: Decimal


class UsageChart(TypedDict):
    days: list[ChartDay]
    series: list[Series]
    height: int
    width: int
    token_ticks: list[int | Decimal]  # top, middle, bottom
    cost_ticks: list[int | Decimal]
    total_tokens: int
    total_cost: Decimal
    empty: bool


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above `value` (an axis's top); 1 for 0."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # unreachable: 10 × power is always enough


def _tick(value: float) -> int | Decimal:
    """An axis label: whole numbers as ints, small amounts of money as short decimals."""
    if value == int(value):
        return int(value)
    return Decimal(str(round(value, 10))).normalize()


def usage_chart(*, first: date, last: date, rows: list[ModelDayUsage], other_label: str) -> UsageChart:
    """The chart of [first, last] (every day, used or not) from per-day, per-model rows."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    totals: dict[int | None, Series] = {}
    for row in rows:
        series = totals.setdefault(
            row["model_id"],
            {
                "index": 0,
                "label": row["label"],
                "route": f"{row['provider']}/{row['model']}",
                "tokens": 0,
                "cost": Decimal(0),
            },
        )
        series["tokens"] += row["tokens"]
        series["cost"] += row["cost"]
    ranked = sorted(totals.items(), key=lambda item: (-item[1]["tokens"], -item[1]["cost"], item[1]["label"]))
    series_of: dict[int | None, int] = {}
    shown: list[Series] = []
    for rank, (model_id, series) in enumerate(ranked):
        if len(ranked) <= MAX_SERIES + 1 or rank < MAX_SERIES:  # one "other" model is drawn as itself
            series["index"] = series_of[model_id] = rank
            shown.append(series)
            continue
        if len(shown) == MAX_SERIES:
            shown.append({"index": MAX_SERIES, "label": other_label, "route": "", "tokens": 0, "cost": Decimal(0)})
        shown[MAX_SERIES]["tokens"] += series["tokens"]
        shown[MAX_SERIES]["cost"] += series["cost"]
        series_of[model_id] = MAX_SERIES

    by_day: dict[date, dict[int, tuple[int, Decimal]]] = {}
    parts: dict[date, list[tuple[str, int, Decimal]]] = {}
    for row in rows:
        index = series_of[row["model_id"]]
        tokens, cost = by_day.setdefault(row["day"], {}).get(index, (0, Decimal(0)))
        by_day[row["day"]][index] = (tokens + row["tokens"], cost + row["cost"])
        parts.setdefault(row["day"], []).append((row["label"], row["tokens"], row["cost"]))

    day_tokens = {day: sum(max(t, 0) for t, _c in values.values()) for day, values in by_day.items()}
    day_cost = {day: sum((c for _t, c in values.values()), Decimal(0)) for day, values in by_day.items()}
    token_top = nice_ceiling(max(day_tokens.values(), default=0))
    if token_top % 2:  # the middle gridline is labelled too: a whole number of tokens (5 -> 10)
        token_top *= 2
    cost_top = nice_ceiling(float(max(day_cost.values(), default=Decimal(0))))
    every = max(1, math.ceil(len(days) / MAX_DAY_LABELS))

    chart_days: list[ChartDay] = []
    for index, day in enumerate(days):
        segments: list[Segment] = []
        y = 0.0
        for series_index, (tokens, _cost) in sorted(by_day.get(day, {}).items()):
            if tokens <= 0:  # a day whose corrections outweigh its use draws nothing
                continue
            height = round(CHART_HEIGHT * tokens / token_top, 2)
            segments.append({"series": series_index, "y": round(y, 2), "height": height})
            y += height
        cost = day_cost.get(day, Decimal(0))
        chart_days.append(
            {
                "day": day,
                "index": index,
                "label": index % every == 0,
                "tokens": sum(t for t, _c in by_day.get(day, {}).values()),
                "cost": cost,
                "segments": segments,
                "cost_y": round(CHART_HEIGHT * float(cost) / cost_top, 2) if cost > 0 else None,
                "parts": parts.get(day, []),
            }
        )
    return {
        "days": chart_days,
        "series": shown,
        "height": CHART_HEIGHT,
        "width": len(days),
        "token_ticks": [_tick(token_top), _tick(token_top / 2), 0],
        "cost_ticks": [_tick(cost_top), _tick(cost_top / 2), 0],
        "total_tokens": sum(series["tokens"] for series in shown),
        "total_cost": sum((series["cost"] for series in shown), Decimal(0)),
        "empty": not rows,
    }
