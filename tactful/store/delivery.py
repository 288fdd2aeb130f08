"""Deferred delivery in SQL: queued proposals, call-back reminders, webhook subscriptions
and the outbox of deliveries, over the tables of `sql.py`'s store.

Every write that follows from a decision happens in that decision's transaction: a
queued defer is stored with the defer, a release writes its hold, the queue row's new
status and its outbox rows together (`SqlStore.decide(..., also=...)`), and a reminder
fires (status `delivered` plus its outbox rows) under the customer's lock. A process that
dies loses nothing and repeats nothing: either all of it committed or none of it did.

Work is claimed with leases: a claim marks rows with the worker's name and a lease time
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite); a worker that dies
leaves its claims to expire, and the next worker takes them over. A release checks the
lease inside its transaction, so two workers never release one item twice.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, Row

from tactful.callbacks import ReminderPlan
from tactful.model import ContactProposal, Decision, Verdict
from tactful.state import CustomerState
from tactful.store.base import Conflict, DecideFn, NotFound
from tactful.store.sql import (
    SqlStore,
    UtcDateTime,
    customers,
    json_type,
    keyed_hash,
    metadata,
    retried,
)
from tactful.store.statements import Cursor

_customer_fk = "customers.customer_id"

#: Proposals waiting for `not_before`: `queued` until released, dropped or cancelled.
queued = Table(
    "queued",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "customer_id", String(255), ForeignKey(_customer_fk, ondelete="CASCADE"), nullable=False
    ),
    #: The proposal in the API's field names (as the audit log keeps it).
    Column("proposal", json_type(), nullable=False),
    Column("priority", Integer, nullable=False),
    #: 0 for transactional proposals, 1 for the rest: claims take lane 0 first.
    Column("lane", Integer, nullable=False),
    Column("source", String(255)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime),
    Column("status", String(16), nullable=False),
    #: The latest decision about it (the release's, once released).
    Column("decision_id", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime),
    Column("closed_at", UtcDateTime),
    #: Why it was dropped: [{rule, kind, message, until}].
    Column("reasons", json_type()),
    Index(None, "status", "lane", "due_at"),
    Index(None, "customer_id"),
)

#: Call-backs the customer asked for, delivered once to the owning team.
reminders = Table(
    "reminders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "customer_id", String(255), ForeignKey(_customer_fk, ondelete="CASCADE"), nullable=False
    ),
    #: When the customer asked (the `callback_requested` event's time): one reminder each.
    Column("requested_at", UtcDateTime, nullable=False),
    #: The time the customer chose.
    Column("for_at", UtcDateTime, nullable=False),
    #: The first time at or after `for_at` the policy allows the call (calling hours).
    Column("due_at", UtcDateTime, nullable=False),
    Column("channel", String(64), nullable=False),
    Column("owner", String(255), nullable=False),
    Column("event_id", String(255)),
    #: pending, delivered or cancelled.
    Column("status", String(16), nullable=False),
    Column("reason", String(255)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("customer_id", "requested_at"),
    Index(None, "status", "due_at"),
)

#: Customers whose reminders need a look: written with the events that may change them.
reminder_sync = Table(
    "reminder_sync",
    metadata,
    Column(
        "customer_id",
        String(255),
        ForeignKey(_customer_fk, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("marked_at", UtcDateTime, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(64), primary_key=True),
    #: The team or sender whose releases and reminders it receives; NULL: every one.
    Column("source", String(255)),
    Column("url", Text, nullable=False),
    #: Signs deliveries (HMAC needs the secret itself, so it is stored as given).
    Column("secret", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    #: The delivery id (`Tactful-Delivery`), the same on every attempt.
    Column("id", String(64), primary_key=True),
    Column("webhook_id", String(64), ForeignKey("webhooks.id"), nullable=False),
    #: queue.released, queue.dropped or callback.due.
    Column("kind", String(32), nullable=False),
    Column("customer_id", String(255)),
    Column("payload", json_type(), nullable=False),
    #: pending, delivered or dead.
    Column("state", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    #: The next try (while claimed: when the claim lapses).
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("give_up_at", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("dead_at", UtcDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Index(None, "state", "next_attempt_at"),
    Index(None, "created_at"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", String(64), ForeignKey("outbox.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("status", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
    Column("worker", String(64), nullable=False),
    Index(None, "delivery_id"),
)

#: Event kinds that may create, move or cancel a customer's reminder.
REMINDER_EVENTS = frozenset({"callback_requested", "opted_out", "unsubscribed", "complained"})


def mark_reminder_events(
    conn: Connection, store: SqlStore, rows: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """In `add_events`' transaction: note the customers whose new events touch reminders."""
    ids = sorted({r["customer_id"] for r in rows if r["kind"] in REMINDER_EVENTS})
    if ids:
        stmt = store._insert_ignoring(reminder_sync, ["customer_id"])
        conn.execute(stmt, [{"customer_id": i, "marked_at": now} for i in ids])


# -- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueuedItem:
    id: str
    customer_id: str
    proposal: dict[str, Any]
    priority: int
    source: str | None
    created_at: datetime
    due_at: datetime
    expires_at: datetime | None
    status: str
    decision_id: str | None
    attempts: int
    closed_at: datetime | None = None
    reasons: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Reminder:
    id: str
    customer_id: str
    requested_at: datetime
    for_at: datetime
    due_at: datetime
    channel: str
    owner: str
    event_id: str | None
    status: str
    reason: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    source: str | None
    url: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    status: int | None
    error: str | None
    duration_ms: float
    worker: str


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    webhook_id: str
    kind: str
    customer_id: str | None
    payload: dict[str, Any]
    state: str
    created_at: datetime
    next_attempt_at: datetime
    give_up_at: datetime
    attempts: int
    delivered_at: datetime | None
    dead_at: datetime | None
    last_status: int | None
    last_error: str | None
    history: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery claimed for one attempt, with where and how to send it."""

    delivery: Delivery
    url: str
    secret: str
    active: bool


#: Reads a customer's state and answers which reminder should exist (None: no request).
PlanFn = Callable[[CustomerState, datetime], ReminderPlan | None]


class LeaseLost(RuntimeError):
    """The queued item is no longer this worker's to release (another took it over)."""


def _queued_of(row: Row[Any]) -> QueuedItem:
    return QueuedItem(
        id=row.id,
        customer_id=row.customer_id,
        proposal=dict(row.proposal),
        priority=row.priority,
        source=row.source,
        created_at=row.created_at,
        due_at=row.due_at,
        expires_at=row.expires_at,
        status=row.status,
        decision_id=row.decision_id,
        attempts=row.attempts,
        closed_at=row.closed_at,
        reasons=tuple(dict(r) for r in (row.reasons or ())),
    )


def _reminder_of(row: Row[Any]) -> Reminder:
    return Reminder(
        id=row.id,
        customer_id=row.customer_id,
        requested_at=row.requested_at,
        for_at=row.for_at,
        due_at=row.due_at,
        channel=row.channel,
        owner=row.owner,
        event_id=row.event_id,
        status=row.status,
        reason=row.reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _webhook_of(row: Row[Any]) -> Webhook:
    return Webhook(row.id, row.source, row.url, bool(row.active), row.created_at)


def _delivery_of(row: Row[Any], history: Iterable[Attempt] = ()) -> Delivery:
    return Delivery(
        id=row.id,
        webhook_id=row.webhook_id,
        kind=row.kind,
        customer_id=row.customer_id,
        payload=dict(row.payload),
        state=row.state,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        give_up_at=row.give_up_at,
        attempts=row.attempts,
        delivered_at=row.delivered_at,
        dead_at=row.dead_at,
        last_status=row.last_status,
        last_error=row.last_error,
        history=tuple(history),
    )


def lane_of(purpose: str) -> int:
    """Claims take lane 0 (transactional) before lane 1 (everything else)."""
    return 0 if purpose == "transactional" else 1


class DeliveryStore:
    """Queue, reminders, webhooks and outbox over one `SqlStore` (thread-safe like it)."""

    def __init__(self, store: SqlStore, *, give_up_after: timedelta = timedelta(hours=72)) -> None:
        self.store = store
        self.give_up_after = give_up_after
        self._postgres = store.engine.dialect.name == "postgresql"
        self._spelling = store._sql.spelling
        p = self._spelling.param
        lock = " FOR UPDATE" if self._postgres else ""

        def sql(text: str) -> str:
            return text.replace("?", p)

        self._lock_queued = sql(f"SELECT status, lease_owner FROM queued WHERE id = ?{lock}")
        self._insert_queued = sql(
            "INSERT INTO queued (id, customer_id, proposal, priority, lane, source, created_at, "
            "due_at, expires_at, status, decision_id, attempts) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, 0)"
        )
        self._released = sql(
            "UPDATE queued SET status = 'released', decision_id = ?, closed_at = ?, "
            "attempts = attempts + 1, lease_owner = NULL, lease_until = NULL WHERE id = ?"
        )
        self._requeued = sql(
            "UPDATE queued SET due_at = ?, decision_id = ?, attempts = attempts + 1, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ?"
        )
        self._dropped = sql(
            "UPDATE queued SET status = 'dropped', decision_id = ?, closed_at = ?, "
            "reasons = ?, attempts = attempts + 1, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ?"
        )
        self._hooks_for = sql(
            "SELECT id FROM webhooks WHERE active = ? AND (source IS NULL OR source = ?) "
            "ORDER BY id"
        )
        self._insert_outbox = sql(
            "INSERT INTO outbox (id, webhook_id, kind, customer_id, payload, state, created_at, "
            "next_attempt_at, give_up_at, attempts) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, 0)"
        )
        self._customer_reminders = sql(
            "SELECT id, requested_at, due_at, status FROM reminders WHERE customer_id = ? "
            "ORDER BY requested_at"
        )
        self._insert_reminder = sql(
            "INSERT INTO reminders (id, customer_id, requested_at, for_at, due_at, channel, "
            "owner, event_id, status, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._set_reminder = sql(
            "UPDATE reminders SET status = ?, reason = ?, due_at = ?, updated_at = ? WHERE id = ?"
        )
        self._unsync = sql("DELETE FROM reminder_sync WHERE customer_id = ?")

    # -- the outbox, written inside other transactions ------------------------------------

    def _enqueue_deliveries(
        self,
        cur: Cursor,
        kind: str,
        source: str | None,
        customer_id: str | None,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> list[str]:
        """An outbox row per active webhook of `source` (and per catch-all webhook)."""
        s = self._spelling
        cur.execute(self._hooks_for, (True, source))
        ids = []
        for (webhook_id,) in cur.fetchall():
            delivery_id = "dl_" + uuid.uuid4().hex
            body = {"id": delivery_id, "type": kind, "created_at": now.isoformat(), **payload}
            cur.execute(
                self._insert_outbox,
                (
                    delivery_id,
                    webhook_id,
                    kind,
                    customer_id,
                    s.json_in(body),
                    s.time_in(now),
                    s.time_in(now),
                    s.time_in(now + self.give_up_after),
                ),
            )
            ids.append(delivery_id)
        return ids

    # -- the queue -------------------------------------------------------------------------

    def queue_on_defer(
        self,
        proposal: ContactProposal,
        recorded: Mapping[str, Any],
        *,
        expires_at: datetime | None,
        now: datetime,
        found: list[QueuedItem],
    ) -> Callable[[Cursor, Decision], None]:
        """The `also` of a decision asked with `on_defer: "queue"`: a defer is stored in the
        queue, due at its `not_before` (unless that is past `expires_at`); the new item is
        appended to `found`."""

        def also(cur: Cursor, decision: Decision) -> None:
            # Run once per attempt of the decision's transaction: only the last attempt
            # committed, so only its item is the one made.
            found.clear()
            if decision.verdict is not Verdict.DEFER or decision.not_before is None:
                return
            if expires_at is not None and decision.not_before > expires_at:
                return
            s = self._spelling
            item = QueuedItem(
                id="q_" + uuid.uuid4().hex,
                customer_id=proposal.customer_id,
                proposal={**recorded, "idempotency_key": None},
                priority=proposal.priority,
                source=proposal.source,
                created_at=now,
                due_at=decision.not_before,
                expires_at=expires_at,
                status="queued",
                decision_id=decision.decision_id,
                attempts=0,
            )
            cur.execute(
                self._insert_queued,
                (
                    item.id,
                    item.customer_id,
                    s.json_in(item.proposal),
                    item.priority,
                    lane_of(proposal.purpose),
                    item.source,
                    s.time_in(now),
                    s.time_in(item.due_at),
                    None if expires_at is None else s.time_in(expires_at),
                    item.decision_id,
                ),
            )
            found.append(item)

        return also

    def queued_for_decision(self, decision_id: str) -> QueuedItem | None:
        """The item a queued defer made (for an idempotent replay of that decision)."""
        with self.store._transaction(write=False) as conn:
            row = conn.execute(
                select(queued)
                .where(queued.c.decision_id == decision_id)
                .order_by(queued.c.created_at)
            ).first()
        return None if row is None else _queued_of(row)

    def get_queued(self, item_id: str) -> QueuedItem:
        with self.store._transaction(write=False) as conn:
            row = conn.execute(select(queued).where(queued.c.id == item_id)).first()
        if row is None:
            raise NotFound(f"no queued proposal with id {item_id!r}")
        return _queued_of(row)

    def list_queue(
        self,
        *,
        customer_id: str | None = None,
        status: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> list[QueuedItem]:
        q = queued.c
        stmt = select(queued)
        for column, value in ((q.customer_id, customer_id), (q.status, status), (q.source, source)):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.order_by(q.due_at, q.id).limit(max(0, limit))
        with self.store._transaction(write=False) as conn:
            return [_queued_of(r) for r in conn.execute(stmt)]

    @retried
    def cancel_queued(self, item_id: str, *, now: datetime) -> QueuedItem:
        """Withdraw a queued proposal; Conflict once it was released or dropped."""
        with self.store._transaction(write=True) as conn:
            row = conn.execute(
                select(queued).where(queued.c.id == item_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no queued proposal with id {item_id!r}")
            if row.status == "cancelled":
                return _queued_of(row)
            if row.status != "queued":
                raise Conflict(f"queued proposal {item_id!r} was already {row.status}")
            conn.execute(
                update(queued)
                .where(queued.c.id == item_id)
                .values(status="cancelled", closed_at=now, lease_owner=None, lease_until=None)
            )
            row = conn.execute(select(queued).where(queued.c.id == item_id)).one()
        return _queued_of(row)

    @retried
    def claim_queue(
        self, worker: str, *, now: datetime, lease: timedelta, limit: int
    ) -> list[QueuedItem]:
        """Claim every due item of up to `limit` customers, transactional lane first, then
        by due time. A customer's due items are claimed together, under the customer's
        row lock (skipped if another transaction holds it), so that one worker releases
        them all in priority order."""
        q = queued.c
        due = and_(
            q.status == "queued",
            q.due_at <= now,
            or_(q.lease_until.is_(None), q.lease_until <= now),
        )
        with self.store._transaction(write=True) as conn:
            scan = select(q.customer_id).where(due).order_by(q.lane, q.due_at).limit(limit * 4)
            ids: list[str] = []
            for cid in conn.execute(scan).scalars():
                if cid not in ids:
                    ids.append(cid)
                    if len(ids) == limit:
                        break
            if not ids:
                return []
            if self._postgres:
                ids = list(
                    conn.execute(
                        select(customers.c.customer_id)
                        .where(customers.c.customer_id.in_(ids))
                        .order_by(customers.c.customer_id)
                        .with_for_update(key_share=True, skip_locked=True)
                    ).scalars()
                )
                if not ids:
                    return []
            rows = conn.execute(
                update(queued)
                .where(due, q.customer_id.in_(ids))
                .values(lease_owner=worker, lease_until=now + lease)
                .returning(*queued.c)
            ).all()
        return [_queued_of(r) for r in rows]

    def release(
        self,
        item: QueuedItem,
        proposal: ContactProposal,
        decide: Callable[..., tuple[Decision, bool]],
        *,
        worker: str,
        now: datetime,
    ) -> tuple[str, Decision]:
        """Decide a claimed item again, now, through `decide` (the store's `decide` with
        its engine bound), and in that same transaction: released (hold placed, sender
        notified), deferred again (due at the new `not_before`), or dropped (denied, or
        deferred past `expires_at`; the sender is notified). Raises LeaseLost if the item
        is no longer this worker's."""
        s = self._spelling
        outcome: list[str] = []

        def also(cur: Cursor, decision: Decision) -> None:
            outcome.clear()  # an attempt rolled back: only the last one's outcome stands
            cur.execute(self._lock_queued, (item.id,))
            row = cur.fetchone()
            if row is None or row[0] != "queued" or row[1] != worker:
                raise LeaseLost(f"queued proposal {item.id!r} is no longer {worker}'s")
            base = {"queued_id": item.id, "customer_id": item.customer_id}
            if decision.verdict is Verdict.ALLOW:
                cur.execute(self._released, (decision.decision_id, s.time_in(now), item.id))
                payload = {
                    **base,
                    "decision": decision_payload(decision),
                    "proposal": item.proposal,
                }
                self._enqueue_deliveries(
                    cur, "queue.released", item.source, item.customer_id, payload, now
                )
                outcome.append("released")
                return
            late = (
                decision.verdict is Verdict.DEFER
                and decision.not_before is not None
                and item.expires_at is not None
                and decision.not_before > item.expires_at
            )
            if decision.verdict is Verdict.DEFER and decision.not_before is not None and not late:
                cur.execute(
                    self._requeued,
                    (s.time_in(decision.not_before), decision.decision_id, item.id),
                )
                outcome.append("deferred")
                return
            reasons = [r.as_dict() for r in decision.reasons]
            if late:
                reasons.append(_expiry_reason(item.expires_at))
            self._drop(cur, item, decision.decision_id, reasons, now)
            outcome.append("dropped")

        decision, _ = decide(proposal, also=also)
        return outcome[0], decision

    def _drop(
        self,
        cur: Cursor,
        item: QueuedItem,
        decision_id: str | None,
        reasons: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        s = self._spelling
        cur.execute(self._dropped, (decision_id, s.time_in(now), s.json_in(reasons), item.id))
        payload = {
            "queued_id": item.id,
            "customer_id": item.customer_id,
            "reasons": reasons,
            "proposal": item.proposal,
        }
        self._enqueue_deliveries(cur, "queue.dropped", item.source, item.customer_id, payload, now)

    @retried
    def drop_expired(self, item: QueuedItem, *, worker: str, now: datetime) -> bool:
        """Drop a claimed item whose `expires_at` has passed, without deciding it again."""
        with self.store._driver_transaction() as cur:
            cur.execute(self._lock_queued, (item.id,))
            row = cur.fetchone()
            if row is None or row[0] != "queued" or row[1] != worker:
                return False
            self._drop(cur, item, item.decision_id, [_expiry_reason(item.expires_at)], now)
        return True

    # -- reminders -------------------------------------------------------------------------

    def reminder_customers(self, *, now: datetime, limit: int) -> list[str]:
        """Customers to reconcile: marked by new events, or with a reminder due."""
        r = reminders.c
        with self.store._transaction(write=False) as conn:
            marked = conn.execute(
                select(reminder_sync.c.customer_id)
                .order_by(reminder_sync.c.marked_at, reminder_sync.c.customer_id)
                .limit(limit)
            ).scalars()
            due = conn.execute(
                select(r.customer_id)
                .where(r.status == "pending", r.due_at <= now)
                .order_by(r.due_at)
                .limit(limit)
            ).scalars()
            out: list[str] = []
            for cid in (*marked, *due):
                if cid not in out:
                    out.append(cid)
        return out

    @retried
    def reconcile_reminder(self, customer_id: str, plan: PlanFn, *, now: datetime) -> list[str]:
        """Under the customer's lock: make their reminders match `plan` (create, move or
        cancel; fire it, once, when due). Returns what changed, e.g. ["created", "fired"]."""
        store = self.store
        sql = store._sql
        s = self._spelling
        id_hash = keyed_hash(store.secret(), "id", customer_id)
        changes: list[str] = []
        with store._driver_transaction() as cur:
            found = sql.lock_customer(cur, customer_id, id_hash)
            if found is None:
                cur.execute(self._unsync, (customer_id,))
                return changes
            profile, version, _ = found
            state = store.states.get(customer_id, version)
            if state is None:
                state = store._state(cur, customer_id, s.json_out(profile))
                store.states.put(customer_id, version, state)
            wanted = plan(state.copy(), now)
            cur.execute(self._customer_reminders, (customer_id,))
            known = [
                (rid, s.time_out(req), s.time_out(due), status)
                for rid, req, due, status in cur.fetchall()
            ]
            when = s.time_in(now)
            for rid, requested, due, status in known:
                if status == "pending" and (wanted is None or requested != wanted.requested_at):
                    why = "withdrawn" if wanted is None else "rescheduled"
                    cur.execute(self._set_reminder, ("cancelled", why, s.time_in(due), when, rid))
                    changes.append("cancelled")
            if wanted is not None:
                self._apply_plan(cur, customer_id, wanted, known, now, changes)
            cur.execute(self._unsync, (customer_id,))
        return changes

    def _apply_plan(
        self,
        cur: Cursor,
        customer_id: str,
        wanted: ReminderPlan,
        known: list[tuple[str, datetime, datetime, str]],
        now: datetime,
        changes: list[str],
    ) -> None:
        s = self._spelling
        when = s.time_in(now)
        same = next((k for k in known if k[1] == wanted.requested_at), None)
        if same is not None and same[3] != "pending":
            return  # delivered or cancelled: a request is answered once
        if wanted.due_at is None:
            if same is not None:
                cur.execute(
                    self._set_reminder,
                    ("cancelled", wanted.reason, s.time_in(same[2]), when, same[0]),
                )
            else:
                self._insert(cur, customer_id, wanted, wanted.for_at, "cancelled", now)
            changes.append("cancelled")
            return
        if same is None:
            rid = self._insert(cur, customer_id, wanted, wanted.due_at, "pending", now)
            changes.append("created")
        else:
            rid = same[0]
            if same[2] != wanted.due_at:
                cur.execute(
                    self._set_reminder, ("pending", None, s.time_in(wanted.due_at), when, rid)
                )
                changes.append("moved")
        if wanted.due_at <= now:
            cur.execute(
                self._set_reminder, ("delivered", None, s.time_in(wanted.due_at), when, rid)
            )
            payload = {
                "reminder_id": rid,
                "customer_id": customer_id,
                "channel": wanted.channel,
                "owner": wanted.owner,
                "requested_at": wanted.requested_at.isoformat(),
                "callback_at": wanted.for_at.isoformat(),
                "due_at": wanted.due_at.isoformat(),
                **(wanted.payload or {}),
            }
            self._enqueue_deliveries(cur, "callback.due", wanted.owner, customer_id, payload, now)
            changes.append("fired")

    def _insert(
        self,
        cur: Cursor,
        customer_id: str,
        wanted: ReminderPlan,
        due: datetime,
        status: str,
        now: datetime,
    ) -> str:
        s = self._spelling
        rid = "rm_" + uuid.uuid4().hex
        cur.execute(
            self._insert_reminder,
            (
                rid,
                customer_id,
                s.time_in(wanted.requested_at),
                s.time_in(wanted.for_at),
                s.time_in(due),
                wanted.channel,
                wanted.owner,
                wanted.event_id,
                status,
                wanted.reason if status == "cancelled" else None,
                s.time_in(now),
                s.time_in(now),
            ),
        )
        return rid

    def list_reminders(
        self, *, customer_id: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[Reminder]:
        r = reminders.c
        stmt = select(reminders)
        if customer_id is not None:
            stmt = stmt.where(r.customer_id == customer_id)
        if status is not None:
            stmt = stmt.where(r.status == status)
        stmt = stmt.order_by(r.due_at, r.id).limit(max(0, limit))
        with self.store._transaction(write=False) as conn:
            return [_reminder_of(row) for row in conn.execute(stmt)]

    # -- webhooks --------------------------------------------------------------------------

    @retried
    def add_webhook(
        self, url: str, *, source: str | None, secret: str | None, now: datetime
    ) -> tuple[Webhook, str]:
        """A new subscription; without `secret` one is made. Returns it with the secret."""
        secret = secret or "whsec_" + secrets.token_urlsafe(32)
        hook = Webhook("wh_" + uuid.uuid4().hex[:16], source, url, True, now)
        with self.store._transaction(write=True) as conn:
            conn.execute(
                insert(webhooks).values(
                    id=hook.id, source=source, url=url, secret=secret, active=True, created_at=now
                )
            )
        return hook, secret

    def list_webhooks(self, *, include_removed: bool = False) -> list[Webhook]:
        stmt = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        if not include_removed:
            stmt = stmt.where(webhooks.c.active.is_(True))
        with self.store._transaction(write=False) as conn:
            return [_webhook_of(r) for r in conn.execute(stmt)]

    @retried
    def remove_webhook(self, webhook_id: str, *, now: datetime) -> Webhook:
        """Deactivate a subscription (its delivery history stays); its pending deliveries
        are given up."""
        with self.store._transaction(write=True) as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
            if row is None or not row.active:
                raise NotFound(f"no webhook with id {webhook_id!r}")
            conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(active=False))
            conn.execute(
                update(outbox)
                .where(outbox.c.webhook_id == webhook_id, outbox.c.state == "pending")
                .values(state="dead", dead_at=now, last_error="webhook removed")
            )
        return Webhook(row.id, row.source, row.url, False, row.created_at)

    # -- deliveries ------------------------------------------------------------------------

    @retried
    def claim_deliveries(self, *, now: datetime, lease: timedelta, limit: int) -> list[Claimed]:
        """Claim due pending deliveries: each is pushed `lease` into the future, so that a
        worker that dies mid-attempt leaves it to be tried again then."""
        o = outbox.c
        with self.store._transaction(write=True) as conn:
            rows = conn.execute(
                select(o.id)
                .where(o.state == "pending", o.next_attempt_at <= now)
                .order_by(o.next_attempt_at, o.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
            ids = list(rows)
            if not ids:
                return []
            conn.execute(update(outbox).where(o.id.in_(ids)).values(next_attempt_at=now + lease))
            found = conn.execute(
                select(outbox, webhooks.c.url, webhooks.c.secret, webhooks.c.active)
                .join(webhooks, webhooks.c.id == o.webhook_id)
                .where(o.id.in_(ids))
                .order_by(o.created_at, o.id)
            ).all()
        return [Claimed(_delivery_of(r), r.url, r.secret, bool(r.active)) for r in found]

    @retried
    def record_attempt(
        self,
        delivery_id: str,
        *,
        worker: str,
        now: datetime,
        status: int | None,
        error: str | None,
        duration_ms: float,
        retry_at: datetime | None,
    ) -> str:
        """Note one attempt: delivered (2xx), retried at `retry_at`, or dead (no `retry_at`
        or past its give-up time). Returns the delivery's new state. A delivery another
        worker finished meanwhile keeps its state; the attempt is still recorded."""
        o = outbox.c
        ok = status is not None and 200 <= status < 300
        with self.store._transaction(write=True) as conn:
            conn.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    at=now,
                    status=status,
                    error=error,
                    duration_ms=duration_ms,
                    worker=worker,
                )
            )
            row = conn.execute(
                select(o.state, o.give_up_at).where(o.id == delivery_id).with_for_update()
            ).first()
            if row is None:
                raise NotFound(f"no delivery with id {delivery_id!r}")
            if row.state != "pending":
                return str(row.state)
            values: dict[str, Any] = {
                "attempts": o.attempts + 1,
                "last_status": status,
                "last_error": error,
            }
            if ok:
                values.update(state="delivered", delivered_at=now)
            elif retry_at is None or retry_at > row.give_up_at:
                values.update(state="dead", dead_at=now)
            else:
                values["next_attempt_at"] = retry_at
            conn.execute(update(outbox).where(o.id == delivery_id).values(values))
        return str(values.get("state", "pending"))

    def get_delivery(self, delivery_id: str) -> Delivery:
        with self.store._transaction(write=False) as conn:
            row = conn.execute(select(outbox).where(outbox.c.id == delivery_id)).first()
            if row is None:
                raise NotFound(f"no delivery with id {delivery_id!r}")
            a = delivery_attempts.c
            history = [
                Attempt(h.at, h.status, h.error, h.duration_ms, h.worker)
                for h in conn.execute(
                    select(delivery_attempts).where(a.delivery_id == delivery_id).order_by(a.id)
                )
            ]
        return _delivery_of(row, history)

    def list_deliveries(
        self,
        *,
        state: str | None = None,
        webhook_id: str | None = None,
        kind: str | None = None,
        customer_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        o = outbox.c
        stmt = select(outbox)
        for column, value in (
            (o.state, state),
            (o.webhook_id, webhook_id),
            (o.kind, kind),
            (o.customer_id, customer_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        stmt = stmt.order_by(o.created_at.desc(), o.id.desc()).limit(max(0, limit))
        with self.store._transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
            ids = [r.id for r in rows]
            a = delivery_attempts.c
            by_id: dict[str, list[Attempt]] = {i: [] for i in ids}
            if ids:
                for h in conn.execute(
                    select(delivery_attempts).where(a.delivery_id.in_(ids)).order_by(a.id)
                ):
                    by_id[h.delivery_id].append(
                        Attempt(h.at, h.status, h.error, h.duration_ms, h.worker)
                    )
        return [_delivery_of(r, by_id[r.id]) for r in rows]

    @retried
    def redeliver(self, delivery_id: str, *, now: datetime) -> Delivery:
        """Send a delivery again (same id, so a receiver that has it ignores it): pending
        from now, with a fresh give-up time. Conflict if its webhook was removed."""
        o = outbox.c
        with self.store._transaction(write=True) as conn:
            row = conn.execute(
                select(outbox, webhooks.c.active)
                .join(webhooks, webhooks.c.id == o.webhook_id)
                .where(o.id == delivery_id)
                .with_for_update(of=outbox)
            ).first()
            if row is None:
                raise NotFound(f"no delivery with id {delivery_id!r}")
            if not row.active:
                raise Conflict(f"delivery {delivery_id!r}: its webhook was removed")
            conn.execute(
                update(outbox)
                .where(o.id == delivery_id)
                .values(
                    state="pending",
                    next_attempt_at=now,
                    give_up_at=now + self.give_up_after,
                    delivered_at=None,
                    dead_at=None,
                )
            )
        return self.get_delivery(delivery_id)

    def counts(self) -> dict[str, int]:
        """Outbox rows by state and queue rows by status (for the dashboard)."""
        with self.store._transaction(write=False) as conn:
            out = {
                f"deliveries_{state}": int(n)
                for state, n in conn.execute(
                    select(outbox.c.state, func.count()).group_by(outbox.c.state)
                )
            }
            out.update(
                {
                    f"queue_{status}": int(n)
                    for status, n in conn.execute(
                        select(queued.c.status, func.count()).group_by(queued.c.status)
                    )
                }
            )
        return out


def decision_payload(d: Decision) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id,
        "verdict": d.verdict.value,
        "at": d.at.isoformat(),
        "not_before": d.not_before.isoformat() if d.not_before else None,
        "reasons": [r.as_dict() for r in d.reasons],
        "policy": {"name": d.policy.name, "version": d.policy.version},
    }


def _expiry_reason(expires_at: datetime | None) -> dict[str, Any]:
    return {
        "rule": "expires_at",
        "kind": "expiry",
        "message": "The proposal expired before it could be allowed.",
        "until": expires_at.isoformat() if expires_at else None,
    }


def delivery_store(store: object) -> DeliveryStore:
    """The delivery tables of `store` (one object per store, made on first use)."""
    if not isinstance(store, SqlStore):
        raise TypeError(f"deferred delivery needs a SQL store, not {type(store).__name__}")
    found = getattr(store, "_deliveries", None)
    if found is None:
        found = DeliveryStore(store)
        store._deliveries = found  # type: ignore[attr-defined]
    assert isinstance(found, DeliveryStore)
    return found


__all__ = [
    "Attempt",
    "Claimed",
    "DecideFn",
    "Delivery",
    "DeliveryStore",
    "LeaseLost",
    "QueuedItem",
    "Reminder",
    "ReminderPlan",
    "Webhook",
    "delivery_store",
]
