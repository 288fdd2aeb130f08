"""The statements every decision runs, in the driver's own SQL.

A decision is the service's hot path: a handful of statements on one customer's rows.
Through SQLAlchemy Core each one costs 20-120 µs of statement building, caching and
result processing, more than the database takes to run it; here they are plain SQL text
on the DBAPI cursor of the store's own transaction (~5 µs on SQLite). `Spelling` says how
a backend writes parameters, times and JSON; the tables are those of `sql.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tactful.model import (
    Contact,
    ContactStatus,
    Decision,
    Event,
    PolicyRef,
    Reason,
    Verdict,
    utc,
)

#: A DBAPI cursor (sqlite3's or psycopg's): execute, fetchone, fetchall, rowcount.
Cursor = Any


@dataclass(frozen=True, slots=True)
class Spelling:
    """How one backend's driver takes and gives back parameters, times and JSON."""

    #: The parameter marker: "?" (sqlite3) or "%s" (psycopg).
    param: str
    #: Appended to the customer-row read that serializes deciders ("" where the
    #: transaction itself serializes them).
    lock: str
    time_in: Callable[[datetime], Any]
    time_out: Callable[[Any], datetime]
    json_in: Callable[[Any], Any]
    json_out: Callable[[Any], Any]


def _sqlite_time_in(value: datetime) -> str:
    # Exactly SQLAlchemy's SQLite DATETIME text (naive UTC, always with microseconds), so
    # that both paths read each other's rows and text order stays time order.
    return utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time_out(value: Any) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def sqlite_spelling(dumps: Callable[[Any], str]) -> Spelling:
    return Spelling("?", "", _sqlite_time_in, _sqlite_time_out, dumps, json.loads)


def postgresql_spelling(dumps: Callable[[Any], str]) -> Spelling:
    from psycopg.types.json import Jsonb

    def json_in(value: Any) -> Any:
        return Jsonb(value, dumps=dumps)

    def json_out(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    return Spelling("%s", " FOR NO KEY UPDATE OF customers", utc, utc, json_in, json_out)


CONTACT_COLUMNS = (
    "contact_id, customer_id, channel, purpose, at, status, outcome, hold_expires, "
    "trigger_event, trigger_at, offer, campaign, source, flags, tags"
)
DECISION_COLUMNS = (
    "decision_id, customer_id, channel, purpose, source, campaign, verdict, not_before, "
    "reasons, flags, rules, policy_name, policy_version, decided_at, at, idempotency_key, "
    "proposal"
)


def marks(n: int) -> str:
    return ", ".join(["?"] * n)


class Statements:
    """The decide path's statements for one backend."""

    def __init__(self, spelling: Spelling) -> None:
        self.spelling = s = spelling

        def sql(text: str) -> str:
            return text.replace("?", s.param)

        self._lock = sql(
            "SELECT profile, version, EXISTS (SELECT 1 FROM suppressions WHERE key_hash = ?) "
            "FROM customers WHERE customer_id = ?" + s.lock
        )
        self._version = sql("SELECT version FROM customers WHERE customer_id = ?")
        self._create = sql(
            "INSERT INTO customers (customer_id, profile, created, updated, version) "
            f"VALUES ({marks(5)}) ON CONFLICT (customer_id) DO NOTHING"
        )
        self._bump = sql("UPDATE customers SET version = version + 1 WHERE customer_id = ?")
        self._events = sql(
            "SELECT kind, at, event_id, properties FROM events WHERE customer_id = ? "
            "ORDER BY at, id"
        )
        self._contacts = sql(
            f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id = ? ORDER BY at"
        )
        self._insert_contact = sql(f"INSERT INTO contacts ({CONTACT_COLUMNS}) VALUES ({marks(15)})")
        # A repeated idempotency key writes nothing (rowcount 0): the caller replays.
        self._insert_decision = sql(
            f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES ({marks(17)}) "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        )
        self._stored_decision = sql(
            "SELECT decision_id, verdict, reasons, flags, policy_name, policy_version, at, "
            "not_before FROM decisions WHERE idempotency_key = ?"
        )

    # -- the customer row ------------------------------------------------------------------

    def lock_customer(
        self, cur: Cursor, customer_id: str, id_hash: str
    ) -> tuple[Any, int, bool] | None:
        """(profile as stored, version, suppressed) of the customer's row, locked for this
        transaction where the backend locks rows; None if there is no row."""
        cur.execute(self._lock, (id_hash, customer_id))
        row = cur.fetchone()
        if row is None:
            return None
        return row[0], int(row[1]), bool(row[2])

    def version(self, cur: Cursor, customer_id: str) -> int | None:
        cur.execute(self._version, (customer_id,))
        row = cur.fetchone()
        return None if row is None else int(row[0])

    def create_customer(self, cur: Cursor, customer_id: str, now: datetime, version: int) -> None:
        s = self.spelling
        when = s.time_in(now)
        cur.execute(self._create, (customer_id, s.json_in({}), when, when, version))

    def bump(self, cur: Cursor, customer_id: str) -> None:
        cur.execute(self._bump, (customer_id,))

    # -- the ledger ------------------------------------------------------------------------

    def ledger(self, cur: Cursor, customer_id: str) -> tuple[list[Event], list[Contact]]:
        """The customer's events and contacts, in time order."""
        cur.execute(self._events, (customer_id,))
        events = [self.event_of(customer_id, row) for row in cur.fetchall()]
        cur.execute(self._contacts, (customer_id,))
        return events, [self.contact_of(row) for row in cur.fetchall()]

    def ledgers(
        self, cur: Cursor, customer_ids: Sequence[str]
    ) -> dict[str, tuple[list[Event], list[Contact]]]:
        """`ledger` for several customers, in two statements for all of them (keep the ids
        well under the backend's limit on parameters)."""
        found: dict[str, tuple[list[Event], list[Contact]]] = {c: ([], []) for c in customer_ids}
        ids = list(found)
        among = f"customer_id IN ({', '.join([self.spelling.param] * len(ids))})"
        cur.execute(
            f"SELECT customer_id, kind, at, event_id, properties FROM events WHERE {among} "
            "ORDER BY customer_id, at, id",
            ids,
        )
        for row in cur.fetchall():
            found[row[0]][0].append(self.event_of(row[0], row[1:]))
        cur.execute(
            f"SELECT {CONTACT_COLUMNS} FROM contacts WHERE {among} "
            "ORDER BY customer_id, at, contact_id",
            ids,
        )
        for row in cur.fetchall():
            found[row[1]][1].append(self.contact_of(row))
        return found

    def event_of(self, customer_id: str, row: Sequence[Any]) -> Event:
        """An event from a row of (kind, at, event_id, properties)."""
        kind, at, event_id, props = row
        s = self.spelling
        return Event(customer_id, kind, s.time_out(at), event_id, s.json_out(props))

    def contact_of(self, r: Sequence[Any]) -> Contact:
        """A contact from a row of `CONTACT_COLUMNS`."""
        s = self.spelling
        time_out = s.time_out
        return Contact(
            contact_id=r[0],
            customer_id=r[1],
            channel=r[2],
            purpose=r[3],
            at=time_out(r[4]),
            status=ContactStatus(r[5]),
            outcome=r[6],
            hold_expires=time_out(r[7]) if r[7] is not None else None,
            trigger_event=r[8],
            trigger_at=time_out(r[9]) if r[9] is not None else None,
            offer=r[10],
            campaign=r[11],
            source=r[12],
            flags=tuple(s.json_out(r[13]) or ()),
            tags=dict(s.json_out(r[14]) or {}),
        )

    def contact_values(self, c: Contact) -> tuple[Any, ...]:
        s = self.spelling
        return (
            c.contact_id, c.customer_id, c.channel, c.purpose, s.time_in(c.at),
            ContactStatus(c.status).value, c.outcome,
            s.time_in(c.hold_expires) if c.hold_expires else None,
            c.trigger_event, s.time_in(c.trigger_at) if c.trigger_at else None,
            c.offer, c.campaign, c.source, s.json_in(list(c.flags)), s.json_in(dict(c.tags)),
        )  # fmt: skip

    def record(
        self, cur: Cursor, decision: Sequence[Any], hold: Contact | None, customer_id: str
    ) -> bool:
        """Write the decision (values from `decision_values`) and, if given, its hold,
        bumping the customer's version. False, writing nothing, when the decision's
        idempotency key is already taken."""
        if not self.insert_decision(cur, decision):
            return False
        if hold is not None:
            cur.execute(self._insert_contact, self.contact_values(hold))
            cur.execute(self._bump, (customer_id,))
        return True

    # -- the audit log ---------------------------------------------------------------------

    def insert_decision(self, cur: Cursor, values: Sequence[Any]) -> bool:
        """Write a decision (values in `DECISION_COLUMNS` order, already spelled); False
        when its idempotency key is already taken."""
        cur.execute(self._insert_decision, values)
        return bool(cur.rowcount)

    def decision_values(
        self,
        decision_id: str,
        decision: Decision,
        customer_id: str,
        proposal_fields: tuple[str, str, str | None, str | None],
        idempotency_key: str | None,
        proposal: dict[str, Any],
        now: datetime,
    ) -> tuple[Any, ...]:
        s = self.spelling
        channel, purpose, source, campaign = proposal_fields
        rule_ids = [r.rule for r in (*decision.reasons, *decision.flags)]
        return (
            decision_id, customer_id, channel, purpose, source, campaign,
            Verdict(decision.verdict).value,
            s.time_in(decision.not_before) if decision.not_before else None,
            s.json_in([r.as_dict() for r in decision.reasons]),
            s.json_in([r.as_dict() for r in decision.flags]),
            "," + "".join(f"{r.replace(',', '')}," for r in rule_ids),
            decision.policy.name, decision.policy.version, s.time_in(now),
            s.time_in(decision.at), idempotency_key, s.json_in(proposal),
        )  # fmt: skip

    def stored_decision(self, cur: Cursor, idempotency_key: str) -> Decision | None:
        s = self.spelling
        cur.execute(self._stored_decision, (idempotency_key,))
        row = cur.fetchone()
        if row is None:
            return None
        decision_id, verdict, reasons, flags, name, version, at, not_before = row
        return Decision(
            verdict=Verdict(verdict),
            reasons=tuple(reason_of(r) for r in s.json_out(reasons)),
            policy=PolicyRef(name, version),
            at=s.time_out(at),
            not_before=s.time_out(not_before) if not_before is not None else None,
            flags=tuple(reason_of(r) for r in s.json_out(flags)),
            decision_id=decision_id,
        )


def reason_of(data: dict[str, Any]) -> Reason:
    until = data.get("until")
    return Reason(
        rule=str(data["rule"]),
        kind=str(data["kind"]),
        message=str(data["message"]),
        until=utc(datetime.fromisoformat(until)) if until else None,
    )
