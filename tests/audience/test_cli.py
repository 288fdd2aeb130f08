"""`tactful audience check` from the command line, against a SQLite store.

The command decides at the wall clock, so the ledgers here are dated relative to it and
the proposal (a marketing email: no calling hours) does not depend on the time of day.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tactful import Contact, ContactStatus, CustomerProfile, Event
from tactful.cli import app
from tactful.store import open_store

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, datetime]:
    """ann: nothing sent; bob: a marketing email two hours ago (20 h apart); cid:
    unsubscribed from marketing email; eve: erased. Returns the URL and bob's send time."""
    url = f"sqlite:///{tmp_path / 'tactful.db'}"
    store = open_store(url)
    now = datetime.now(UTC).replace(microsecond=0)
    sent = now - timedelta(hours=2)
    for cid in ("ann", "bob", "cid", "eve"):
        store.put_profile(CustomerProfile(cid, timezone="America/Chicago", country="US"))
    store.add_contacts([Contact("bob-1", "bob", "email", "marketing", sent)])
    store.add_events(
        [
            Event(
                "cid",
                "unsubscribed",
                now - timedelta(days=3),
                "cid-u",
                {"channel": "email", "purpose": "marketing"},
            )
        ],
        received_at=now,
    )
    store.erase("eve", now=now)
    store.close()
    return url, sent


def _ids(tmp_path: Path, text: str, name: str = "ids.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _check(ids: Path, url: str, *extra: str) -> list[str]:
    return [
        "audience",
        "check",
        str(ids),
        "--channel",
        "email",
        "--purpose",
        "marketing",
        "--database-url",
        url,
        *extra,
    ]


def test_csv_lines_in_input_order_and_the_summary_tables(
    db: tuple[str, datetime], tmp_path: Path
) -> None:
    url, sent = db
    # An unknown id, a duplicate, a blank line: one line per id given, blanks skipped.
    ids = _ids(tmp_path, "ann\nbob\n\nnever-seen\nann\ncid\neve\n")
    out = tmp_path / "verdicts.csv"
    result = runner.invoke(app, _check(ids, url, "--out", str(out)))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["customer_id"] for r in rows] == ["ann", "bob", "never-seen", "ann", "cid", "eve"]
    assert [r["verdict"] for r in rows] == ["allow", "defer", "allow", "allow", "deny", "deny"]
    bob = rows[1]
    assert datetime.fromisoformat(bob["not_before"]) == sent + timedelta(hours=20)
    assert bob["rules"] == "marketing-email-gap"
    assert "20 hours apart" in bob["reasons"]
    assert rows[4]["rules"] == "opt-out" and rows[4]["not_before"] == ""
    assert rows[5]["rules"] == "erased"
    assert all(r["decision_id"] == "" for r in rows)
    text = result.stdout
    assert "6 customers, email marketing, policy courtesy" in " ".join(text.split())
    counts = {
        line.split()[1]: line.split()[3]
        for line in text.splitlines()
        if line.split()[1:2] in (["allow"], ["defer"], ["deny"])
    }
    assert counts == {"allow": "3", "defer": "1", "deny": "2"}
    assert "held back by rule" in text
    for rule in ("marketing-email-gap", "opt-out", "erased"):
        assert rule in text
    # A check without --hold holds nobody.
    store = open_store(url)
    try:
        assert all(c.status is not ContactStatus.HELD for c in store.load_state("ann").contacts)
    finally:
        store.close()


def test_ndjson_from_a_csv_of_ids(db: tuple[str, datetime], tmp_path: Path) -> None:
    url, sent = db
    ids = _ids(tmp_path, "customer_id,segment\nbob,a\nann,b\n", "ids.csv")
    out = tmp_path / "verdicts.ndjson"
    result = runner.invoke(app, _check(ids, url, "--out", str(out)))
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["customer_id"] for x in lines] == ["bob", "ann"]
    assert lines[0]["verdict"] == "defer"
    assert datetime.fromisoformat(lines[0]["not_before"]) == sent + timedelta(hours=20)
    assert lines[0]["reasons"][0]["rule"] == "marketing-email-gap"
    assert lines[1] == {"customer_id": "ann", "verdict": "allow", "not_before": None, "reasons": []}


def test_hold_places_one_hold_per_allowed_customer(
    db: tuple[str, datetime], tmp_path: Path
) -> None:
    url, _ = db
    ids = _ids(tmp_path, "ann\nbob\nann\n")
    out = tmp_path / "held.ndjson"
    result = runner.invoke(app, _check(ids, url, "--hold", "--out", str(out)))
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    first, bob, again = lines
    assert first["verdict"] == "allow" and first["decision_id"]
    assert bob["verdict"] == "defer" and "decision_id" not in bob
    # The duplicate is decided again after the first hold: the 20-hour gap now defers it.
    assert again["verdict"] == "defer"
    assert again["reasons"][0]["rule"] == "marketing-email-gap"
    store = open_store(url)
    try:
        held = [c for c in store.load_state("ann").contacts if c.status is ContactStatus.HELD]
        assert [c.contact_id for c in held] == [first["decision_id"]]
        assert store.get_decision(first["decision_id"]).verdict == "allow"
        assert all(c.status is not ContactStatus.HELD for c in store.load_state("bob").contacts)
    finally:
        store.close()


def _said(text: str) -> str:
    # The console wraps long lines (paths included) at its width: compare without spaces.
    return "".join(text.split())


def test_bad_input_is_refused_with_a_clear_error(db: tuple[str, datetime], tmp_path: Path) -> None:
    url, _ = db
    ids = _ids(tmp_path, "ann\n")
    cases = [
        (_check(tmp_path / "nope.txt", url), 2, "nope.txt: no such file"),
        (_check(ids, url, "--out", str(tmp_path / "v.txt")), 2, "--out: name a .csv or .ndjson"),
        (_check(ids, url, "--at", "next tuesday"), 2, "--at: not an ISO 8601 date-time"),
        (
            _check(_ids(tmp_path, "id,segment\nann,a\n", "no-column.csv"), url),
            2,
            "no-column.csv: a CSV needs a `customer_id` column",
        ),
        (_check(ids, url, "--policy", "no-such-pack"), 1, "no-such-pack"),
        (["audience", "check", str(ids), "--purpose", "marketing"], 2, "--channel"),
    ]
    for args, code, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.output)
        assert _said(message) in _said(result.stderr), (args, result.stderr)
    # Nothing was held by any of them.
    store = open_store(url)
    try:
        assert all(c.status is not ContactStatus.HELD for c in store.load_state("ann").contacts)
    finally:
        store.close()
