"""The suppression token (SQLite and PostgreSQL): `decide` keeps a customer's suppression
entries by address between decisions, yet a suppression (or lift, or erasure) committed
by another store, as another process would, is seen by the very next decision; and a
merge of ids already merged is answered by a read, without the merge lock."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta
from typing import cast

import psycopg

from tactful import ContactProposal, CustomerProfile, Event, Verdict
from tactful.model import Decision
from tactful.service.identity import address_check
from tactful.store import open_store
from tactful.store.sql import SqlStore

from .conftest import NOW, courtesy

PHONE = "+13125550142"
SMS = ContactProposal("crm-9", "sms", "service")


def _decide(store: SqlStore, proposal: ContactProposal) -> Decision:
    decision, _ = store.decide(
        proposal,
        courtesy,
        now=NOW,
        hold_ttl_seconds=900,
        hold=False,
        address_check=address_check,
    )
    return decision


def _served_from_cache(store: SqlStore, proposal: ContactProposal) -> Decision:
    before = store._identity.cached
    decision = _decide(store, proposal)
    assert store._identity.cached == before + 1, "the kept entries were not used"
    return decision


def test_another_stores_suppression_reaches_the_next_decision(store_url: str) -> None:
    here = cast(SqlStore, open_store(store_url))
    there = cast(SqlStore, open_store(store_url))
    try:
        # Some other number said STOP long ago: the token exists, entries can be kept.
        there.put_profile(CustomerProfile("old", phones=("+13125550100",)))
        there.add_events(
            [Event("old", "opted_out", NOW - timedelta(days=9), "old-stop", {"channel": "sms"})],
            received_at=NOW,
        )
        here.put_profile(CustomerProfile("crm-9", timezone="America/Chicago", phones=(PHONE,)))
        assert _decide(here, SMS).verdict is Verdict.ALLOW
        assert _served_from_cache(here, SMS).verdict is Verdict.ALLOW

        # Another team's record holding the number says STOP, through the other store.
        there.put_profile(CustomerProfile("team-b", phones=("+1 312 555 0142",)))
        there.add_events(
            [Event("team-b", "opted_out", NOW - timedelta(minutes=5), "stop", {"channel": "sms"})],
            received_at=NOW,
        )
        denied = _decide(here, SMS)
        assert denied.verdict is Verdict.DENY
        assert [r.rule for r in denied.reasons] == ["address-suppressed"]
        assert _served_from_cache(here, SMS).verdict is Verdict.DENY

        # START through the other store lifts it: seen at once too.
        there.add_events(
            [
                Event(
                    "team-b", "subscribed", NOW - timedelta(minutes=1), "start", {"channel": "sms"}
                )
            ],
            received_at=NOW,
        )
        assert _decide(here, SMS).verdict is Verdict.ALLOW
        assert _served_from_cache(here, SMS).verdict is Verdict.ALLOW

        # Erasing the other record suppresses the number for good.
        assert there.erase("team-b", now=NOW)
        erased = _decide(here, SMS)
        assert erased.verdict is Verdict.DENY
        assert "erased on request" in erased.reasons[0].message
    finally:
        here.close()
        there.close()


def test_a_new_address_on_the_profile_is_checked_again(store: SqlStore) -> None:
    store.put_profile(CustomerProfile("team-b", phones=(PHONE,)))
    store.add_events(
        [Event("team-b", "opted_out", NOW - timedelta(minutes=5), "stop", {"channel": "sms"})],
        received_at=NOW,
    )
    store.put_profile(CustomerProfile("crm-9", phones=("+13125550177",)))
    assert _decide(store, SMS).verdict is Verdict.ALLOW
    assert _served_from_cache(store, SMS).verdict is Verdict.ALLOW
    store.put_profile(CustomerProfile("crm-9", phones=("+13125550177", PHONE)))
    assert _decide(store, SMS).verdict is Verdict.DENY
    # And a proposal's `to` is checked on its own.
    store.put_profile(CustomerProfile("crm-9", phones=("+13125550177",)))
    assert _decide(store, SMS).verdict is Verdict.ALLOW
    assert _decide(store, ContactProposal("crm-9", "sms", "service", to=PHONE)).verdict is (
        Verdict.DENY
    )


def test_merging_ids_already_merged_takes_no_write_lock(store_url: str, backend: str) -> None:
    store = cast(SqlStore, open_store(store_url))
    try:
        store.merge(["anon-1", "user-1"], at=NOW, via="segment-track", now=NOW)
        done: list[object] = []
        with _write_lock_held(store_url, backend):
            worker = threading.Thread(
                target=lambda: done.append(
                    store.merge(["user-1", "anon-1"], at=NOW, via="segment-track", now=NOW)
                )
            )
            worker.start()
            worker.join(timeout=30)
            assert not worker.is_alive(), "an idempotent merge waited for the write lock"
        assert len(done) == 1
        result = done[0]
        assert getattr(result, "canonical_id", None) == "anon-1"
        assert getattr(result, "merged", None) == ()
        assert store.identity("user-1").canonical_id == "anon-1"
    finally:
        store.close()


class _write_lock_held:
    """Another connection holding what a merge's write transaction waits for: SQLite's
    write lock, or PostgreSQL's lock on the settings row merges queue on."""

    def __init__(self, url: str, backend: str) -> None:
        self.url, self.backend = url, backend

    def __enter__(self) -> None:
        if self.backend == "sqlite":
            self.lite = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            self.lite.execute("BEGIN IMMEDIATE")
        else:
            self.pg = psycopg.connect(self.url)
            self.pg.execute("SELECT key FROM settings WHERE key = 'secret' FOR UPDATE")

    def __exit__(self, *exc: object) -> None:
        if self.backend == "sqlite":
            self.lite.execute("ROLLBACK")
            self.lite.close()
        else:
            self.pg.rollback()
            self.pg.close()
