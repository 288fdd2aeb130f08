"""Plotly figures for the dashboard, built on the server and shipped as JSON.

Pages embed each figure as `<script type="application/json">` data that the packaged
`charts.js` hands to the bundled `plotly.min.js` (served by the dashboard, no CDN). Every
chart has a table beside it, so a page is complete without JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
from markupsafe import Markup

#: Verdict colours (text labels always accompany them; never colour alone).
VERDICT_COLOURS = {"allow": "#2e7d32", "defer": "#b26a00", "deny": "#c62828"}
EVENT_COLOUR = "#5c6773"
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"


def plotly_js() -> Path:
    """The minified plotly.js that ships inside the `plotly` Python package."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def plotly_version() -> str:
    return str(plotly.__version__)


def _layout(fig: go.Figure, *, height: int = 320, legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 48, "r": 16, "t": 16, "b": 40},
        font={"family": FONT, "size": 13, "color": "#1b1b1b"},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "traceorder": "normal"},
        hoverlabel={"font": {"family": FONT}},
    )
    return fig


def _counts(fig: go.Figure, axis: str, largest: float) -> None:
    """Counts are whole: no tick at 0.2 of a customer."""
    ticks: dict[str, Any] = {"rangemode": "tozero", "tickformat": ",d"}
    if largest <= 8:
        ticks["dtick"] = 1
    fig.update_layout({f"{axis}axis": ticks})


def embed(fig: go.Figure) -> Markup:
    """The figure's JSON, safe inside a `<script type="application/json">` element."""
    text = fig.to_json() or "{}"
    # JSON allows these escapes inside strings, and the characters occur nowhere else in
    # it: the text can then never close the script element or start a comment.
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def verdicts_by_day(days: Sequence[str], counts: dict[str, list[int]]) -> go.Figure:
    """Stacked bars: decisions per day, one colour per verdict."""
    fig = go.Figure()
    for verdict in ("allow", "defer", "deny"):
        fig.add_bar(
            x=list(days),
            y=counts.get(verdict, [0] * len(days)),
            name=verdict,
            marker_color=VERDICT_COLOURS[verdict],
        )
    fig.update_layout(barmode="stack", xaxis_title=None, yaxis_title="decisions")
    totals = [sum(day) for day in zip(*counts.values(), strict=True)] if counts else [0]
    _counts(fig, "y", max(totals, default=0))
    return _layout(fig)


def rules_fired(rules: Sequence[str], deferred: Sequence[int], denied: Sequence[int]) -> go.Figure:
    """Horizontal bars: how often each rule held a contact back."""
    fig = go.Figure()
    fig.add_bar(
        y=list(rules),
        x=list(deferred),
        name="deferred",
        orientation="h",
        marker_color=VERDICT_COLOURS["defer"],
    )
    fig.add_bar(
        y=list(rules),
        x=list(denied),
        name="denied",
        orientation="h",
        marker_color=VERDICT_COLOURS["deny"],
    )
    fig.update_layout(barmode="stack", yaxis={"autorange": "reversed"})
    _counts(fig, "x", max((d + n for d, n in zip(deferred, denied, strict=True)), default=0))
    return _layout(fig, height=max(220, 28 * len(rules) + 80))


def contacts_by_channel(channels: Sequence[str], teams: dict[str, list[int]]) -> go.Figure:
    """Stacked bars: contacts allowed per channel, one colour per team."""
    fig = go.Figure()
    for team, counts in teams.items():
        fig.add_bar(x=list(channels), y=counts, name=team)
    fig.update_layout(barmode="stack", yaxis_title="contacts")
    totals = [sum(c) for c in zip(*teams.values(), strict=True)] if teams else [0]
    _counts(fig, "y", max(totals, default=0))
    return _layout(fig)


def pressure_histogram(values: Sequence[float], budget: float | None) -> go.Figure:
    """How many customers are under how much pressure, with the policy's budget marked."""
    fig = go.Figure()
    size = budget / 12 if budget else None  # twelve bins up to the budget
    fig.add_histogram(
        x=list(values),
        xbins={"start": 0, "size": size} if size else None,
        marker_color="#1f5c99",
        name="customers",
    )
    if budget is not None:
        fig.add_vline(
            x=budget,
            line_dash="dash",
            line_color=VERDICT_COLOURS["deny"],
            annotation_text=f"budget {budget:g}",
            annotation_position="top right",
        )
    fig.update_layout(xaxis_title="pressure", yaxis_title="customers", bargap=0.05)
    fig.update_layout(yaxis={"rangemode": "tozero", "tickformat": ",d"})
    return _layout(fig, legend=False)


def suppressions_by_day(days: Sequence[str], counts: dict[str, list[int]]) -> go.Figure:
    """Stacked bars: opt-outs, unsubscribes and complaints per day."""
    fig = go.Figure()
    colours = {"opted_out": "#c62828", "unsubscribed": "#b26a00", "complained": "#6a1b9a"}
    for kind, series in counts.items():
        fig.add_bar(
            x=list(days), y=series, name=kind.replace("_", " "), marker_color=colours.get(kind)
        )
    fig.update_layout(barmode="stack", yaxis_title="customers")
    totals = [sum(c) for c in zip(*counts.values(), strict=True)] if counts else [0]
    _counts(fig, "y", max(totals, default=0))
    return _layout(fig)


#: Points of one lane closer than this fan out vertically instead of hiding each other.
BURST_SECONDS = 6 * 3600.0
FAN = (0.0, 0.22, -0.22, 0.11, -0.11, 0.33, -0.33)


def _fanned(rows: Sequence[dict[str, Any]], lanes: Sequence[str]) -> list[float]:
    """A y position per row: its lane, nudged when it falls in a burst in that lane."""
    lane_y = {lane: len(lanes) - 1 - i for i, lane in enumerate(lanes)}
    last: dict[str, tuple[float, int]] = {}
    ys = []
    for r in rows:
        ts = r["when"].timestamp()
        prev = last.get(r["lane"])
        k = prev[1] + 1 if prev is not None and ts - prev[0] < BURST_SECONDS else 0
        last[r["lane"]] = (ts, k)
        ys.append(lane_y[r["lane"]] + FAN[k % len(FAN)])
    return ys


def timeline(rows: Sequence[dict[str, Any]], lanes: Sequence[str], now: datetime) -> go.Figure:
    """One time axis: customer events on the top lanes, then a lane per contact channel.

    `rows` (in time order) carry `when`, `lane`, `verdict` (None for events), `hover`
    and, for a deferral, `until`. Contacts in quick succession in one lane (three calls in
    four minutes) fan out so that each stays visible."""
    fig = go.Figure()
    ys = _fanned(rows, lanes)
    # A deferral draws a dotted line to the time it was deferred to (under the markers).
    for r, y in zip(rows, ys, strict=True):
        if r["verdict"] == "defer" and r.get("until"):
            fig.add_scatter(
                x=[r["when"], r["until"]],
                y=[y, y],
                mode="lines",
                line={"color": VERDICT_COLOURS["defer"], "dash": "dot", "width": 1.5},
                hoverinfo="skip",
                showlegend=False,
            )
    for verdict in (None, "allow", "defer", "deny"):
        picked = [(r, y) for r, y in zip(rows, ys, strict=True) if r["verdict"] == verdict]
        if not picked:
            continue
        fig.add_scatter(
            x=[r["when"] for r, _ in picked],
            y=[y for _, y in picked],
            mode="markers",
            name=verdict or "customer event",
            marker={
                "size": 13 if verdict else 10,
                "color": VERDICT_COLOURS[verdict] if verdict else EVENT_COLOUR,
                "symbol": {"allow": "circle", "defer": "diamond", "deny": "x"}.get(
                    verdict or "", "square"
                ),
                "line": {"width": 1, "color": "#ffffff"},
            },
            text=[r["hover"] for r, _ in picked],
            hovertemplate="%{text}<extra></extra>",
        )
    fig.add_vline(x=now, line_color="#888888", line_dash="dash")
    # Open on what happened (and what was deferred to), not on the weeks since: a story
    # of minutes would otherwise be a dot at the edge. Zooming out shows `now`.
    times = [r["when"] for r in rows] + [r["until"] for r in rows if r.get("until")]
    xaxis: dict[str, Any] = {"type": "date"}
    if times:
        lo, hi = min(times), max(times)
        pad = max((hi - lo) * 0.06, timedelta(minutes=30))
        xaxis["range"] = [lo - pad, hi + pad]
    fig.update_layout(
        yaxis={
            "tickmode": "array",
            "tickvals": list(range(len(lanes))),
            "ticktext": list(reversed(lanes)),
            "range": [-0.6, len(lanes) - 0.4],
            "zeroline": False,
            "title": None,
        },
        xaxis=xaxis,
        hovermode="closest",
    )
    return _layout(fig, height=max(220, 64 * len(lanes) + 110))
