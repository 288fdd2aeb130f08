"""The replay report: one self-contained HTML file (Plotly's JavaScript inlined from the
installed package), readable offline and attachable to an email.

What it shows: contacts allowed, deferred and denied, overall and by rule, channel, team
(source) and campaign; customers' peak contact pressure as it was and as it would have
been; the customers the policy protects most; where outcomes were logged, conversion,
unsubscribe and complaint rates by how many contacts a customer received; and with a
second policy, the two side by side.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, cast

import jinja2
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from tactful.policy.document import Policy
from tactful.rules.pressure import PressureRule

if TYPE_CHECKING:
    from tactful.replay.run import ReplayResult

VERDICTS = ("allow", "defer", "deny")
COLOURS = {"allow": "#2e7d32", "defer": "#f9a825", "deny": "#c62828"}
#: Buckets of "contacts a customer received" for the outcome curve.
BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)
TOP = 15
#: Bars of a histogram (customers' peak pressure).
HISTOGRAM_BINS = 40


@dataclass
class Section:
    title: str
    intro: str
    figures: list[str]
    tables: list[str]


@functools.cache
def _template() -> dict[str, Any]:
    """Plotly's "plotly_white" template as the page's JSON holds it, made once: setting it
    on each figure (`update_layout(template=...)`) copied and checked it anew, ~0.3 s of
    a 10M-row replay's report (1.1 -> 0.5-0.7 s, with each policy's verdicts counted once)."""
    return cast(dict[str, Any], pio.templates["plotly_white"].to_plotly_json())


def _figure(fig: go.Figure, div_id: str, height: int = 380) -> str:
    spec = fig.to_plotly_json()
    spec["layout"] = {
        **spec.get("layout", {}),
        "height": height,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 50},
        "template": _template(),
        "legend": {"orientation": "h", "y": -0.2},
    }
    # Checked already (made as a `go.Figure`): written as it is.
    return str(
        pio.to_html(
            spec,
            full_html=False,
            include_plotlyjs=False,
            div_id=div_id,
            config={"responsive": True},
            validate=False,
        )
    )


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _heading(result: ReplayResult, run: int) -> str:
    """A policy's name as the heading of its tables."""
    return f"<h3>{html.escape(_label(result, run))}</h3>"


def _headed(result: ReplayResult, run: int, table: str) -> str:
    """`table` under its policy's name where the report holds two policies' tables."""
    if len(result.policies) < 2:
        return table
    return _heading(result, run) + table


def _label(result: ReplayResult, run: int) -> str:
    p = result.policies[run]
    label = f"{p.name} v{p.version}"
    if (
        len(result.policies) > 1
        and sum(1 for q in result.policies if f"{q.name} v{q.version}" == label) > 1
    ):
        label += " (compare)" if run else " (policy)"
    return label


def _by(frame: pl.DataFrame, column: str, top: int = TOP) -> pl.DataFrame:
    """Counts of each verdict per value of `column`, the busiest values first."""
    # Counted per (value, verdict), on the values as the verdicts hold them (categoricals'
    # codes), then named and laid out: 5-10x quicker on 2.5M verdicts than three sums of
    # comparisons per value.
    counted = (
        frame.lazy()
        .group_by(column, "verdict")
        .len()
        .with_columns(pl.col(column, "verdict").cast(pl.String))
        .with_columns(pl.col(column).fill_null("(none)"))
        .collect()
    )
    counts = (
        counted.lazy()
        .group_by(column)
        .agg(pl.col("len").filter(pl.col("verdict") == v).sum().alias(v) for v in VERDICTS)
        .with_columns(pl.col(VERDICTS).cast(pl.UInt32))
        .with_columns(pl.sum_horizontal(*VERDICTS).alias("total"))
        .sort(["total", column], descending=[True, False])
        .collect()
    )
    return counts.head(top)


def _per_customer(frame: pl.DataFrame) -> pl.DataFrame:
    """Per customer: contacts, and how many the policy allowed, stopped and denied; the
    peak pressure as logged and under the policy. One pass, grouped by the ids' codes
    (a group-by on their text, three times over, took ~1 s of a 10M-row report)."""
    return (
        frame.lazy()
        .group_by(pl.col("customer_id").cast(pl.Categorical))
        .agg(
            pl.len().alias("contacts"),
            (pl.col("verdict") == "allow").sum().alias("allowed"),
            (pl.col("verdict") != "allow").sum().alias("stopped"),
            (pl.col("verdict") == "deny").sum().alias("denied"),
            pl.col("pressure_logged").max().alias("logged"),
            pl.col("pressure_replayed").max().alias("replayed"),
        )
        .with_columns(pl.col("customer_id").cast(pl.String))
        .collect()
    )


def _stacked(counts: pl.DataFrame, column: str, title: str, div_id: str) -> str:
    fig = go.Figure()
    labels = counts.get_column(column).to_list()
    for v in VERDICTS:
        fig.add_bar(name=v, x=labels, y=counts.get_column(v).to_list(), marker_color=COLOURS[v])
    fig.update_layout(barmode="stack", title=title)
    return _figure(fig, div_id)


def histograms(
    values: Sequence[pl.Series], bins: int = HISTOGRAM_BINS
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Counts of `values` (each a series; nulls and NaN left out) in `bins` bins of equal
    width shared by all of them, and the bins' edges: a report of millions of customers
    carries `bins` numbers per series, not one per customer."""
    arrays = [v.drop_nulls().drop_nans().to_numpy() if len(v) else np.zeros(0) for v in values]
    present = [a for a in arrays if len(a)]
    low = min(float(a.min()) for a in present) if present else 0.0
    high = max(float(a.max()) for a in present) if present else 1.0
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    return edges, [np.histogram(a, bins=edges)[0] for a in arrays]


def _by_rule(frame: pl.DataFrame) -> pl.DataFrame:
    # Each list of rules counted once, then split: a few hundred lists, not a million (and
    # lazily: only the two columns read, no copy of the verdicts held back).
    held = frame.lazy().filter(pl.col("rules").is_not_null())
    lists = held.group_by("rules", "verdict").len().collect()
    if lists.height == 0:
        return pl.DataFrame(schema={"rule": pl.String, "defer": pl.UInt32, "deny": pl.UInt32})
    exploded = lists.select(
        pl.col("rules").cast(pl.String).str.split(";").alias("rule"),
        pl.col("verdict").cast(pl.String),
        "len",
    )
    return (
        exploded.explode("rule")
        .group_by("rule")
        .agg(pl.col("len").filter(pl.col("verdict") == v).sum().alias(v) for v in ("defer", "deny"))
        .with_columns(pl.col("defer", "deny").cast(pl.UInt32))
        .with_columns((pl.col("defer") + pl.col("deny")).alias("total"))
        .sort(["total", "rule"], descending=[True, False])
    )


def _customer_outcomes(result: ReplayResult) -> pl.DataFrame:
    """Per customer, from the log as it happened: contacts received, and whether they
    converted (completed an order), unsubscribed or opted out, or complained."""
    # Only the columns read, in the files' order: the replay never held the whole timeline,
    # and what happened to each customer does not depend on the order.
    t = result.log.source.stacked(("customer_id", "is_contact", "outcome", "event")).lazy()
    contacts = t.filter(pl.col("is_contact"))
    events = t.filter(~pl.col("is_contact"))
    received = contacts.group_by("customer_id").agg(
        pl.len().alias("received"),
        (pl.col("outcome") == "unsubscribed").any().alias("u1"),
        (pl.col("outcome") == "complained").any().alias("c1"),
        pl.col("outcome").is_not_null().any().alias("has_outcomes"),
    )
    signals = events.group_by("customer_id").agg(
        (pl.col("event") == "order_completed").any().alias("converted"),
        pl.col("event").is_in(["unsubscribed", "opted_out"]).any().alias("u2"),
        (pl.col("event") == "complained").any().alias("c2"),
    )
    joined = received.join(signals, on="customer_id", how="full", coalesce=True)
    return joined.select(
        pl.col("customer_id").cast(pl.String),
        pl.col("received").fill_null(0),
        pl.col("converted").fill_null(False),
        (pl.col("u1").fill_null(False) | pl.col("u2").fill_null(False)).alias("unsubscribed"),
        (pl.col("c1").fill_null(False) | pl.col("c2").fill_null(False)).alias("complained"),
        pl.col("has_outcomes").fill_null(False),
    ).collect()


def _budget(policy: Policy) -> float | None:
    rule = next((r for r in policy.rules if isinstance(r, PressureRule)), None)
    return None if rule is None else rule.budget


def _bucket(n: int) -> str:
    for i, low in enumerate(BUCKETS):
        high = BUCKETS[i + 1] if i + 1 < len(BUCKETS) else None
        if high is None or n < high:
            if high is None:
                return f"{low}+"
            return str(low) if high - low == 1 else f"{low}-{high - 1}"
    return str(n)


def _bucket_expr(column: str) -> pl.Expr:
    expr: pl.Expr = pl.lit(f"{BUCKETS[-1]}+")
    for i in range(len(BUCKETS) - 2, -1, -1):
        expr = (
            pl.when(pl.col(column) < BUCKETS[i + 1])
            .then(pl.lit(_bucket(BUCKETS[i])))
            .otherwise(expr)
        )
    return expr


def _bucket_order() -> list[str]:
    return [_bucket(b) for b in BUCKETS]


def sections(result: ReplayResult) -> list[Section]:
    runs = range(len(result.policies))
    frames = result.verdicts
    out: list[Section] = []
    compare = len(frames) > 1
    customers = [_per_customer(f) for f in frames]
    tallies = [result.counts(run) for run in runs]

    # -- overall ---------------------------------------------------------------------------
    rows = []
    for run in runs:
        c = tallies[run]
        total = sum(c.values()) or 1
        deferred = frames[run].filter(pl.col("verdict") == "defer")
        delay = None
        if deferred.height:
            hours = deferred.select(
                ((pl.col("not_before") - pl.col("at")).dt.total_seconds() / 3600).median()
            ).item()
            delay = float(hours) if hours is not None else None
        rows.append(
            [
                _label(result, run),
                sum(c.values()),
                c["allow"],
                f"{100 * c['allow'] / total:.1f}%",
                c["defer"],
                f"{100 * c['defer'] / total:.1f}%",
                c["deny"],
                f"{100 * c['deny'] / total:.1f}%",
                "" if delay is None else f"{delay:,.1f} h",
            ]
        )
    fig = go.Figure()
    for v in VERDICTS:
        fig.add_bar(
            name=v,
            x=[_label(result, r) for r in runs],
            y=[tallies[r][v] for r in runs],
            marker_color=COLOURS[v],
        )
    fig.update_layout(barmode="group", title="Contacts by verdict")
    out.append(
        Section(
            "Verdicts",
            "Every logged contact, decided at its own time by the same engine the service "
            "uses. A deferred contact would have waited until its not_before; a denied one "
            "would not have been made. Neither counts against later caps or pressure.",
            [_figure(fig, "verdicts")],
            [
                _table(
                    [
                        "policy",
                        "contacts",
                        "allowed",
                        "%",
                        "deferred",
                        "%",
                        "denied",
                        "%",
                        "median deferral",
                    ],
                    rows,
                )
            ],
        )
    )

    # -- by rule ---------------------------------------------------------------------------
    figs, tables = [], []
    for run in runs:
        by_rule = _by_rule(frames[run])
        fig = go.Figure()
        for v in ("defer", "deny"):
            fig.add_bar(
                name=v,
                y=by_rule.get_column("rule").to_list()[:TOP][::-1],
                x=by_rule.get_column(v).to_list()[:TOP][::-1],
                orientation="h",
                marker_color=COLOURS[v],
            )
        fig.update_layout(
            barmode="stack", title=f"Rules that held contacts back: {_label(result, run)}"
        )
        figs.append(
            _figure(fig, f"rules-{run}", height=max(300, 28 * min(len(by_rule), TOP) + 120))
        )
        tables.append(
            _headed(result, run, _table(["rule", "deferred", "denied", "total"], by_rule.rows()))
        )
    out.append(
        Section(
            "By rule",
            "Each rule that deferred or denied a contact (a contact held back by several rules "
            "counts for each).",
            figs,
            tables,
        )
    )

    # -- by channel, team, campaign ------------------------------------------------------
    for column, title in (
        ("channel", "By channel"),
        ("source", "By team (source)"),
        ("campaign", "By campaign"),
    ):
        figs, tables = [], []
        for run in runs:
            counts = _by(frames[run], column)
            figs.append(
                _stacked(counts, column, f"{title}: {_label(result, run)}", f"{column}-{run}")
            )
            tables.append(_headed(result, run, _table([column, *VERDICTS, "total"], counts.rows())))
        out.append(Section(title, f"The {TOP} busiest values first.", figs, tables))

    # -- pressure ----------------------------------------------------------------------------
    figs, tables = [], []
    for run in runs:
        peaks = customers[run]
        fig = go.Figure()
        edges, counted = histograms([peaks.get_column("logged"), peaks.get_column("replayed")])
        centres, widths = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
        for binned, name, colour in zip(
            counted, ("as logged", "under the policy"), ("#6d4c41", "#1565c0"), strict=True
        ):
            fig.add_bar(
                x=centres.tolist(),
                y=binned.tolist(),
                width=widths.tolist(),
                name=name,
                opacity=0.6,
                marker_color=colour,
            )
        fig.update_layout(
            barmode="overlay",
            title=f"Peak pressure per customer: {_label(result, run)}",
            xaxis_title="peak pressure",
            yaxis_title="customers",
        )
        figs.append(_figure(fig, f"pressure-{run}"))
        stats = []
        budget = _budget(result.policies[run])
        for col, name in (("logged", "as logged"), ("replayed", "under the policy")):
            s = peaks.get_column(col)
            row: list[Any] = [name]
            row += [cast(float, v or 0.0) for v in (s.median(), s.quantile(0.9), s.max())]
            row.append("—" if budget is None else int((s > budget).sum()))
            stats.append(row)
        limit = "(none set)" if budget is None else f"({budget:g})"
        above = f"customers above the budget {limit}"
        table = _table(["", "median peak", "p90 peak", "max peak", above], stats)
        tables.append(_headed(result, run, table))
    out.append(
        Section(
            "Customer pressure, before and after",
            "Each customer's highest contact pressure over the log: every contact adds its "
            "channel's weight, halving with the policy's half-life, unanswered ones counting "
            "more. As logged counts every contact made; under the policy only those it allows.",
            figs,
            tables,
        )
    )

    # -- protected customers -------------------------------------------------------------------
    tables = []
    for run in runs:
        f = frames[run]
        top = (
            customers[run]
            .select(
                "customer_id",
                "contacts",
                "stopped",
                "denied",
                pl.col("logged").alias("peak_logged"),
                pl.col("replayed").alias("peak_replayed"),
            )
            .filter(pl.col("stopped") > 0)
            .sort(["stopped", "customer_id"], descending=[True, False])
            .head(20)
        )
        rules = (
            f.filter(pl.col("customer_id").is_in(top.get_column("customer_id").implode()))
            .select(
                pl.col("customer_id").cast(pl.String),
                pl.col("rules").cast(pl.String).str.split(";"),
            )
            .explode("rules")
            .drop_nulls("rules")
            .group_by("customer_id", "rules")
            .len()
            .sort(["customer_id", "len", "rules"], descending=[False, True, False])
            .unique("customer_id", keep="first", maintain_order=True)
            .select("customer_id", pl.col("rules").alias("rule"))
        )
        top = top.join(rules, on="customer_id", how="left", maintain_order="left").select(
            "customer_id", "contacts", "stopped", "denied", "rule", "peak_logged", "peak_replayed"
        )
        tables.append(
            _heading(result, run)
            + _table(
                [
                    "customer",
                    "contacts logged",
                    "stopped",
                    "of them denied",
                    "most frequent rule",
                    "peak pressure logged",
                    "peak under policy",
                ],
                top.rows(),
            )
        )
    out.append(
        Section(
            "Customers the policy protects most",
            "Those who received the most contacts that the policy would have stopped.",
            [],
            tables,
        )
    )

    # -- outcomes by contact count ----------------------------------------------------------
    per_customer = _customer_outcomes(result)
    if per_customer.get_column("has_outcomes").any() or per_customer.get_column("converted").any():
        curve = (
            per_customer.with_columns(_bucket_expr("received").alias("bucket"))
            .group_by("bucket")
            .agg(
                pl.len().alias("customers"),
                (pl.col("converted").mean() * 100).alias("conversion"),
                (pl.col("unsubscribed").mean() * 100).alias("unsubscribe"),
                (pl.col("complained").mean() * 100).alias("complaint"),
            )
        )
        order = {b: i for i, b in enumerate(_bucket_order())}
        curve = curve.with_columns(
            pl.col("bucket").replace_strict(order, return_dtype=pl.Int64).alias("i")
        ).sort("i")
        fig = go.Figure()
        xs = curve.get_column("bucket").to_list()
        for col, colour in (
            ("conversion", "#2e7d32"),
            ("unsubscribe", "#ef6c00"),
            ("complaint", "#c62828"),
        ):
            fig.add_scatter(
                x=xs,
                y=curve.get_column(col).to_list(),
                mode="lines+markers",
                name=f"{col} rate %",
                line_color=colour,
            )
        fig.update_layout(
            title="Outcomes by contacts received (as logged)",
            xaxis_title="contacts received over the log",
            yaxis_title="% of customers",
        )
        dist = go.Figure()
        dist.add_bar(
            x=xs,
            y=curve.get_column("customers").to_list(),
            name="as logged",
            marker_color="#6d4c41",
        )
        for run in runs:
            allowed = customers[run].select("customer_id", "allowed")
            everyone = per_customer.select("customer_id").join(
                allowed, on="customer_id", how="left"
            )
            buckets = (
                everyone.with_columns(pl.col("allowed").fill_null(0))
                .with_columns(_bucket_expr("allowed").alias("bucket"))
                .group_by("bucket")
                .len()
            )
            got = dict(buckets.iter_rows())
            dist.add_bar(x=xs, y=[got.get(b, 0) for b in xs], name=f"under {_label(result, run)}")
        dist.update_layout(
            barmode="group",
            title="Customers by contacts received",
            xaxis_title="contacts received",
            yaxis_title="customers",
        )
        out.append(
            Section(
                "Does more contact pay?",
                "Customers grouped by how many contacts they received in the log, and the share "
                "of each group who completed an order, unsubscribed or opted out, or complained "
                "(from the events and the logged outcomes). Where conversion flattens while "
                "unsubscribes and complaints climb, more contact stops paying. Outcomes of "
                "contacts the policy suppresses are not observable, so these rates are the log's; "
                "the second chart shows how the policy would move customers between groups.",
                [_figure(fig, "outcomes"), _figure(dist, "received")],
                [
                    _table(
                        ["contacts", "customers", "conversion %", "unsubscribe %", "complaint %"],
                        curve.select(
                            "bucket", "customers", "conversion", "unsubscribe", "complaint"
                        ).rows(),
                    )
                ],
            )
        )

    # -- side by side -----------------------------------------------------------------------
    if compare:
        a, b = frames[0], frames[1]
        joined = a.select("row", pl.col("verdict").alias("a")).join(
            b.select("row", pl.col("verdict").alias("b")), on="row"
        )
        matrix = joined.group_by("a", "b").len()
        got = {(x, y): n for x, y, n in matrix.iter_rows()}
        la, lb = _label(result, 0), _label(result, 1)
        rows = [[f"{la}: {x}", *[got.get((x, y), 0) for y in VERDICTS]] for x in VERDICTS]
        changed = sum(n for (x, y), n in got.items() if x != y)
        out.append(
            Section(
                "The two policies side by side",
                f"{changed:,} contacts get a different verdict. Rows: {la}; columns: {lb}.",
                [],
                [_table(["", *[f"{lb}: {v}" for v in VERDICTS]], rows)],
            )
        )

    # -- bad rows ----------------------------------------------------------------------------
    bad = result.log.bad_rows
    if bad:
        out.append(
            Section(
                "Rows left out",
                f"{len(bad):,} problems in the input; those rows were not replayed (all of them "
                "are in bad-rows.csv; --strict makes them fatal).",
                [],
                [
                    _table(
                        ["file", "row", "column", "value", "problem"],
                        [[b.file, b.row, b.column, b.value, b.message] for b in bad[:50]],
                    )
                ],
            )
        )
    return out


def render_report(result: ReplayResult, *, sources: Sequence[str] = ()) -> str:
    """The report as one HTML document."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: (resources.files("tactful.replay") / "templates" / name).read_text("utf-8")
        ),
        autoescape=jinja2.select_autoescape(default=True),
    )
    template = env.get_template("report.html")
    period = ""
    span = result.log.source.period_us
    if span is not None:
        lo, hi = span
        fmt = "%Y-%m-%d %H:%M UTC"
        period = (
            f"{datetime.fromtimestamp(lo / 1e6, UTC).strftime(fmt)} to "
            f"{datetime.fromtimestamp(hi / 1e6, UTC).strftime(fmt)}"
        )
    return template.render(
        plotly_js=get_plotlyjs(),
        policies=[_label(result, r) for r in range(len(result.policies))],
        sources=sources,
        period=period,
        rows=result.rows,
        contacts=result.log.contacts,
        events=result.log.events,
        customers=result.log.customers,
        bad_rows=len(result.log.bad_rows),
        engine=result.engine,
        seconds=result.seconds,
        sections=sections(result),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
