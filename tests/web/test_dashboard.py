"""The dashboard's pages on the demo customers: overview, customer time line, policy
(validate, what-if), audit log and CSV, static files."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from tactful.demo import load_demo
from tactful.policy.document import Policy
from tactful.store.base import AuditQuery
from tactful.web import dashboard, whatif
from tests.web.conftest import Web


@pytest.fixture
def demo(web: Web) -> Web:
    load_demo(web.store, now=web.clock())
    web.sign_in("read")
    return web


def cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each row of a table, tags stripped."""
    table = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", c).split())
            for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)
        ]
        for r in rows
    ]


def test_overview_counts_what_the_audit_log_holds(demo: Web) -> None:
    page = demo.client.get("/ui?days=90").text
    records = demo.store.audit(AuditQuery(limit=10_000, since=demo.clock() - timedelta(days=90)))
    assert f'<span class="n">{len(records)}</span>' in page
    denied = sum(1 for r in records if r.verdict == "deny")
    assert f'<span class="n">{denied}</span>' in page
    # The rules that fire most, the contacts by team, the pressure list, the opt-outs.
    assert "sales-call-gap" in page and "opt-out" in page
    assert "rep-12" in page  # michelle's rep, by channel and team
    assert "demo-michelle" in page  # among the most pressured
    assert re.search(r"<td>\d{4}-\d\d-\d\d</td><td class=\"num\">1</td>", page)  # brokeup's opt-out
    # Each chart ships as JSON for plotly.js, with its table beside it.
    assert page.count('type="application/json" data-plot=') == 5
    assert '<script src="/ui/static/plotly.min.js">' in page
    assert "cdn" not in page.lower()


def test_customer_time_line_shows_the_second_call_held_back_with_its_reason(demo: Web) -> None:
    r = demo.client.get("/ui/customers", params={"q": "demo-rebecca"}, follow_redirects=False)
    assert r.status_code == 303
    page = demo.client.get(r.headers["location"]).text
    rows = cells(page, "timeline-table")
    calls = [row for row in rows if row and row[1].startswith("call / sales")]
    assert [row[2].split()[0] for row in calls] == ["allow", "defer", "defer"]
    assert "sales-call-gap" in calls[1][3] and "48" in calls[1][3]
    assert "no_answer" in calls[0][3]
    assert "plot-timeline" in page
    # Where she stands now: pressure, next allowed per channel.
    assert "Pressure" in page and "When each channel may next be used" in page


def test_customer_view_shows_events_and_opt_outs(demo: Web) -> None:
    page = demo.client.get("/ui/customer", params={"id": "demo-brokeup"}).text
    assert "Opted out of everything" in page  # the event on the time line
    assert "everything" in page and "since" in page  # the opt-out in "where they stand"
    rows = cells(page, "timeline-table")
    assert sum(1 for row in rows if row[2:3] == ["deny"]) == 3


def test_unknown_customer_is_a_404_page(demo: Web) -> None:
    r = demo.client.get("/ui/customer", params={"id": "nobody"})
    assert r.status_code == 404
    assert "No customer has the id" in r.text


def test_customer_search_lists_partial_matches(demo: Web) -> None:
    page = demo.client.get("/ui/customers", params={"q": "demo-c"}).text
    for cid in ("demo-cart", "demo-chat", "demo-consult", "demo-creepy"):
        assert f">{cid}</a>" in page
    assert ">demo-tv</a>" not in page


def test_policy_error_points_at_line_and_field(demo: Web) -> None:
    text = demo.runtime.policy.text
    lines = text.splitlines()
    n = next(i for i, line in enumerate(lines, 1) if "budget: 12" in line)
    broken = text.replace("budget: 12", "budget: lots")
    r = demo.form("/ui/policy", {"text": broken, "action": "validate"})
    assert r.status_code == 422
    assert f"Line {n}" in r.text
    assert re.search(r"<code>rules\[\d+\]\.budget</code>", r.text)
    assert "budget: lots" in r.text  # the draft is kept in the editor
    assert demo.runtime.policy.text == text


def test_valid_draft_is_reported(demo: Web) -> None:
    r = demo.form("/ui/policy", {"text": demo.runtime.policy.text, "action": "validate"})
    assert r.status_code == 200
    assert "The draft is valid" in r.text


def test_what_if_shows_verdict_changes_and_rules(demo: Web) -> None:
    draft = demo.runtime.policy.text.replace("budget: 12", "budget: 3")
    r = demo.form("/ui/policy", {"text": draft, "action": "whatif", "days": "30"})
    assert r.status_code == 200
    rows = cells(r.text, "whatif-changes")[1:]
    assert rows and all(row[0] != row[1].removeprefix("→ ") for row in rows)
    assert "<code>pressure</code>" in r.text
    assert "per-decision counterfactual" in r.text and "tactful replay" in r.text
    assert demo.runtime.policy.text != draft  # nothing adopted


def test_what_if_with_the_active_policy_changes_nothing(demo: Web) -> None:
    policy = demo.runtime.policy
    result = whatif.run(demo.store, policy, policy, demo.clock(), days=90)
    assert result.considered > 40
    assert result.changed == 0
    assert result.reproduced == result.considered  # the cut ledger gives the logged verdicts


def test_what_if_is_bounded(demo: Web) -> None:
    policy = demo.runtime.policy
    result = whatif.run(demo.store, policy, Policy.load("courtesy"), demo.clock(), days=10_000)
    assert result.days == whatif.MAX_DAYS


def test_audit_filters_and_exports_csv(demo: Web) -> None:
    page = demo.client.get("/ui/audit", params={"verdict": "deny", "channel": "call"}).text
    rows = cells(page, "audit-table")[1:]
    assert rows and all(row[4].startswith("deny") and row[2].startswith("call") for row in rows)
    r = demo.client.get("/ui/audit.csv", params={"verdict": "deny", "channel": "call"})
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == len(rows)
    assert {row["verdict"] for row in table} == {"deny"}
    by_rule = demo.client.get("/ui/audit.csv", params={"rule": "sales-call-gap"}).text
    assert all("sales-call-gap" in row["rules"] for row in csv.DictReader(io.StringIO(by_rule)))
    day = demo.clock().date().isoformat()
    none = demo.client.get("/ui/audit.csv", params={"since": day, "until": day}).text
    assert len(none.splitlines()) == 1  # nothing decided today yet: the header alone


def test_audit_pages_through_older_decisions(demo: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "AUDIT_PAGE", 20)
    seen: list[list[str]] = []
    path = "/ui/audit?verdict=defer"
    while path:
        page = demo.client.get(path).text
        seen += cells(page, "audit-table")[1:]
        older = re.search(r'href="(/ui/audit\?[^"]*before=[^"]+)"', page)
        path = older.group(1).replace("&amp;", "&") if older else ""
    deferred = demo.store.audit(AuditQuery(verdict="defer", limit=1000))
    assert len(seen) == len(deferred) > 20


def test_plotly_is_served_from_the_package_with_caching(web: Web) -> None:
    r = web.client.get("/ui/static/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert "max-age" in r.headers["cache-control"]
    assert len(r.content) > 1_000_000
    again = web.client.get("/ui/static/plotly.min.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert web.client.get("/ui/static/../app.py").status_code == 404
    assert web.client.get("/ui/static/nothing.js").status_code == 404


def test_customer_view_shows_merges_and_suppression_by_address(web: Web) -> None:
    """Where they stand: the ids the customer is known by, the merges, and an opt-out
    another record made for a number this customer holds, which also closes the
    next-allowed cells it covers (as a decision would be answered)."""
    from tactful import CustomerProfile, Event

    now = web.clock()
    web.sign_in()
    phone = "+13125550177"
    for cid in ("crm-1", "crm-2", "other-team"):
        web.store.put_profile(
            CustomerProfile(cid, timezone="America/Chicago", country="US", phones=(phone,))
        )
    web.store.merge(["crm-2", "crm-1"], at=now, via="api", reference="dedup-7", now=now)
    web.store.add_events(
        [Event("other-team", "opted_out", now, "stop-1", {"channel": "sms"})], received_at=now
    )
    page = web.client.get("/ui/customer", params={"id": "crm-2"}).text
    assert "Known as" in page and "<code>crm-1</code>, <code>crm-2</code>" in page
    assert "crm-2 merged in" in page and "dedup-7" in page
    assert "Addresses" in page and "phone" in page
    nxt = {row[0]: row[1:] for row in cells(page, "next-table")}
    assert "deny" in nxt["sms"][0] and "deny" in nxt["call"][0]
    assert "deny" not in nxt["email"][0]
