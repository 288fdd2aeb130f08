"""The HTML report: self-contained, with every section, side by side under --compare."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from tactful.policy.document import Policy
from tactful.replay.run import ReplayResult, replay
from tactful.replay.synthetic import write_log
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, need_browser


def _compared(tmp_path: Path) -> ReplayResult:
    """A small synthetic log replayed through courtesy and us-tcpa, its report in
    `tmp_path / "out"`."""
    files = write_log(tmp_path / "log", customers=25, seed=6)
    return replay(
        files.contacts,
        files.events,
        Policy.load("courtesy"),
        compare=Policy.load("us-tcpa"),
        customers=files.customers,
        out=tmp_path / "out",
        workers=1,
    )


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    result = _compared(tmp_path)
    html = (tmp_path / "out" / "report.html").read_text()
    # Plotly's bundled JavaScript is inlined: no script or stylesheet from elsewhere.
    assert "plotly.js" in html.lower() and len(html) > 1_000_000
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"http", html)
    for title in (
        "Verdicts",
        "By rule",
        "By channel",
        "By team (source)",
        "By campaign",
        "Customer pressure, before and after",
        "Customers the policy protects most",
        "Does more contact pay?",
        "The two policies side by side",
    ):
        assert f"<h2>{title}</h2>" in html
    assert "courtesy v1" in html and "us-tcpa" in html
    # Each policy's tables under its name, where the two policies' follow each other.
    compare = Policy.load("us-tcpa")
    for title in ("By rule", "By channel", "By campaign", "Customer pressure, before and after"):
        section = html.split(f"<h2>{title}</h2>", 1)[1].split("<h2>", 1)[0]
        headings = re.findall(r"<h3>(.*?)</h3>", section)
        assert headings == ["courtesy v1", f"us-tcpa v{compare.version}"], (title, headings)
    # us-tcpa sets no pressure budget: said so, not left as blank cells.
    assert "customers above the budget (12)" in html
    assert "customers above the budget (none set)" in html
    # Peak pressure counted into bins here, not one value per customer in the page.
    traces = re.search(r'Plotly\.newPlot\(\s*"pressure-0",\s*(\[.*?\]),\s*\{"', html, re.S)
    assert traces is not None
    pressure = json.loads(traces.group(1))
    assert [t["type"] for t in pressure] == ["bar", "bar"]
    contacted = result.verdicts[0].get_column("customer_id").n_unique()
    assert sum(pressure[0]["y"]) == sum(pressure[1]["y"]) == contacted
    counts = result.counts()
    assert f"{counts['deny']:,}" in html
    # Every figure laid out on Plotly's white template.
    figures = re.findall(r'Plotly\.newPlot\(\s*"([\w-]+)",\s*', html)
    assert len(figures) >= 6
    for at in re.finditer(r'Plotly\.newPlot\(\s*"[\w-]+",\s*', html):
        decoder = json.JSONDecoder()
        _, end = decoder.raw_decode(html, at.end())
        layout, _ = decoder.raw_decode(html, html.index("{", end))
        assert layout["template"]["layout"]["plot_bgcolor"] == "white"
        assert layout["legend"] == {"orientation": "h", "y": -0.2}


def test_histograms_count_every_value_in_shared_bins() -> None:
    import polars as pl

    from tactful.replay.report import histograms

    a = pl.Series([0.0, 0.5, 2.0, None, float("nan"), 10.0])
    b = pl.Series([1.0, 1.0, 9.99])
    edges, (ca, cb) = histograms([a, b], bins=4)
    assert edges.tolist() == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert ca.tolist() == [3, 0, 0, 1]  # the top edge counts in the last bin
    assert cb.tolist() == [2, 0, 0, 1]
    # One value, or none: still bins a chart can draw.
    edges, (one,) = histograms([pl.Series([3.0, 3.0])], bins=2)
    assert edges.tolist() == [3.0, 3.5, 4.0] and one.tolist() == [2, 0]
    edges, (none,) = histograms([pl.Series([], dtype=pl.Float64)], bins=2)
    assert len(edges) == 3 and none.tolist() == [0, 0]


def test_the_tables_count_what_the_verdicts_hold() -> None:
    """The per-value, per-rule and per-customer counts (worked out from counts of pairs
    and on the ids' codes) against a count of each row."""
    from collections import Counter

    import polars as pl

    from tactful.replay.report import TOP, _by, _by_rule, _per_customer

    rows = [
        ("a", "email", "allow", None, 1.0, 1.0),
        ("a", "email", "defer", "gap;cap", 2.0, 1.5),
        ("b", None, "deny", "consent", 0.5, 0.5),
        ("b", "sms", "defer", "cap", 3.0, 2.0),
        ("c", "sms", "deny", "cap;consent", 1.0, 0.0),
        ("c", "call", "allow", None, None, None),
        ("b", "email", "deny", "consent;gap;cap", 4.0, 1.0),
    ]
    frame = pl.DataFrame(
        rows,
        schema=["customer_id", "channel", "verdict", "rules", "pressure_logged",
                "pressure_replayed"],
        orient="row",
    )  # fmt: skip
    by = _by(frame, "channel")
    want = Counter((ch or "(none)", v) for _, ch, v, *_ in rows)
    got = {(r["channel"], v): r[v] for r in by.to_dicts() for v in ("allow", "defer", "deny")}
    assert {k: n for k, n in got.items() if n} == dict(want)
    assert by.get_column("total").to_list() == [3, 2, 1, 1]  # busiest first, then by name
    assert by.get_column("channel").to_list() == ["email", "sms", "(none)", "call"][:TOP]
    assert by.schema["allow"] == pl.UInt32

    held = Counter((rule, v) for _, _, v, rules, *_ in rows if rules for rule in rules.split(";"))
    per_rule = {r["rule"]: (r["defer"], r["deny"]) for r in _by_rule(frame).to_dicts()}
    assert per_rule == {rule: (held[(rule, "defer")], held[(rule, "deny")]) for rule, _ in held}
    assert _by_rule(frame).get_column("rule").to_list() == ["cap", "consent", "gap"]
    assert _by_rule(frame.head(1)).height == 0

    customers = {r["customer_id"]: r for r in _per_customer(frame).to_dicts()}
    assert customers["b"] == {
        "customer_id": "b", "contacts": 3, "allowed": 0, "stopped": 3, "denied": 2,
        "logged": 4.0, "replayed": 2.0,
    }  # fmt: skip
    assert customers["c"]["allowed"] == 1 and customers["c"]["logged"] == 1.0
    assert sorted(customers) == ["a", "b", "c"]


#: Each figure's cell in the page, and the width Plotly drew the figure at.
_CELLS = """() => [...document.querySelectorAll('.figures > div')].map(cell => {
    const box = cell.getBoundingClientRect();
    const svg = cell.querySelector('svg.main-svg').getBoundingClientRect();
    return {id: cell.querySelector('.plotly-graph-div').id, left: box.left, top: box.top,
            width: box.width, drawn: svg.width};
})"""


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 800, 390], ids=["two-columns", "one-column", "phone"])
def test_report_figures_are_drawn_within_their_place_in_a_browser(
    tmp_path: Path, width: int
) -> None:
    """Side-by-side figures each drawn as wide as their column, not over the next one:
    Plotly draws a figure as its script runs, while the page is still being read, when
    its neighbour's cell did not exist yet (the left one of two was drawn across both).
    On a phone, nothing makes the page wider than the screen."""
    need_browser()
    from playwright.sync_api import sync_playwright

    _compared(tmp_path)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": width, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto((tmp_path / "out" / "report.html").as_uri())
            page.wait_for_function("document.querySelectorAll('svg.main-svg').length > 0")
            cells = page.evaluate(_CELLS)
            # Nothing wider than the screen: long file names wrap, wide tables scroll.
            page_width = page.evaluate("document.scrollingElement.scrollWidth")
        finally:
            chromium.close()
    assert not errors
    assert page_width <= width
    assert len(cells) >= 10
    for cell in cells:
        assert cell["drawn"] <= cell["width"] + 1, cell
    rows: dict[int, list[dict[str, float]]] = {}
    for cell in cells:
        rows.setdefault(round(cell["top"]), []).append(cell)
    side_by_side = [row for row in rows.values() if len(row) > 1]
    if width == 1280:  # the two policies' figures side by side
        assert side_by_side
    else:  # one under the other
        assert not side_by_side
    for row in side_by_side:
        row.sort(key=lambda c: c["left"])
        for left, right in pairwise(row):
            assert left["left"] + left["width"] <= right["left"] + 1, (left, right)
