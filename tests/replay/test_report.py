"""The HTML report: self-contained, with every section, side by side under --compare."""

from __future__ import annotations

import re
from pathlib import Path

from tactful.policy.document import Policy
from tactful.replay.run import replay
from tactful.replay.synthetic import write_log


def test_report_is_self_contained_and_complete(tmp_path: Path) -> None:
    files = write_log(tmp_path / "log", customers=25, seed=6)
    result = replay(
        files.contacts,
        files.events,
        Policy.load("courtesy"),
        compare=Policy.load("us-tcpa"),
        customers=files.customers,
        out=tmp_path / "out",
        workers=1,
    )
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
    counts = result.counts()
    assert f"{counts['deny']:,}" in html
