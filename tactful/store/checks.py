"""Many customers' states at once, for read-only checks (`SqlStore.load_states`).

What `SqlStore.decide` reads for one id under its lock, read here for a batch of ids in
one transaction with five queries per 5,000 ids, whatever their number: which ids are
erased (the suppression list by id), the rows the ids resolve to (an alias's canonical
customer, one self-join), the events and contacts of customers whose folded state the
cache does not hold at the row's version, and the suppression entries by address that
those customers' addresses match. Nothing is locked or written, and nothing read here
enters the cache: only `decide`'s locked read fills it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from tactful.model import Contact, CustomerProfile, Event
from tactful.state import CustomerState
from tactful.store.base import AddressHit, CheckState
from tactful.store.cache import StateCache
from tactful.store.sql import (
    _contact_of,
    _profile_of,
    address_suppressions,
    addresses,
    contacts,
    customers,
    events,
    keyed_hash,
    suppressions,
)

#: Ids per query (an IN list well under every backend's limit on parameters).
BATCH = 5000


def load_states(
    conn: Connection, secret: bytes, cache: StateCache, customer_ids: Sequence[str]
) -> dict[str, CheckState]:
    """`CheckState` of each distinct id, in the caller's read transaction."""
    wanted = sorted(set(customer_ids))
    found: dict[str, CheckState] = {}
    for start in range(0, len(wanted), BATCH):
        found.update(_batch(conn, secret, cache, wanted[start : start + BATCH]))
    return found


def _batch(
    conn: Connection, secret: bytes, cache: StateCache, ids: list[str]
) -> dict[str, CheckState]:
    by_hash = {keyed_hash(secret, "id", cid): cid for cid in ids}
    erased = {
        by_hash[h]
        for h in conn.execute(
            select(suppressions.c.key_hash).where(suppressions.c.key_hash.in_(list(by_hash)))
        ).scalars()
    }
    # Each id -> the row it resolves to: its own, or its canonical customer's.
    asked, target = customers.alias("asked"), customers.alias("target")
    rows = conn.execute(
        select(asked.c.customer_id.label("asked"), target.c.customer_id, target.c.profile)
        .add_columns(target.c.version)
        .select_from(
            asked.join(
                target,
                target.c.customer_id == func.coalesce(asked.c.canonical_id, asked.c.customer_id),
            )
        )
        .where(asked.c.customer_id.in_(ids))
    ).all()
    canonical_of = {r.asked: r.customer_id for r in rows}
    states: dict[str, CustomerState] = {}
    profiles: dict[str, Any] = {}
    for r in rows:
        if r.customer_id in states or r.customer_id in profiles:
            continue
        cached = cache.get(r.customer_id, r.version)
        if cached is not None:
            states[r.customer_id] = cached
        else:
            profiles[r.customer_id] = r.profile
    states.update(_fold(conn, profiles))
    hits = _hits(conn, sorted(c for c, s in states.items() if s.profile.phones or s.profile.emails))
    out: dict[str, CheckState] = {}
    for cid in ids:
        canonical = canonical_of.get(cid)
        if canonical is None:
            state = CustomerState(CustomerProfile(cid))
            out[cid] = CheckState(cid, state, cid in erased, ())
        else:
            out[cid] = CheckState(cid, states[canonical], cid in erased, hits.get(canonical, ()))
    return out


def _fold(conn: Connection, profiles: dict[str, Any]) -> dict[str, CustomerState]:
    """States of these customers (id -> stored profile), from their ledgers."""
    if not profiles:
        return {}
    ids = sorted(profiles)
    ledger_events: dict[str, list[Event]] = {cid: [] for cid in ids}
    ledger_contacts: dict[str, list[Contact]] = {cid: [] for cid in ids}
    e = events.c
    for r in conn.execute(
        select(e.customer_id, e.kind, e.at, e.event_id, e.properties)
        .where(e.customer_id.in_(ids))
        .order_by(e.customer_id, e.at, e.id)
    ):
        ledger_events[r.customer_id].append(
            Event(r.customer_id, r.kind, r.at, r.event_id, r.properties)
        )
    rows: Any = conn.execute(
        select(contacts)
        .where(contacts.c.customer_id.in_(ids))
        .order_by(contacts.c.customer_id, contacts.c.at, contacts.c.contact_id)
    )
    for r in rows:
        ledger_contacts[r.customer_id].append(_contact_of(r))
    return {
        cid: CustomerState(
            _profile_of(cid, profiles[cid]), ledger_events[cid], ledger_contacts[cid]
        )
        for cid in ids
    }


def _hits(conn: Connection, customer_ids: list[str]) -> dict[str, tuple[AddressHit, ...]]:
    """Suppression entries matching each customer's addresses (as `decide` reads them)."""
    # Imported here: `identity` imports `sql`, which imports this module at its end.
    from tactful.store.identity import _hit

    if not customer_ids:
        return {}
    s = address_suppressions.c
    found: dict[str, list[AddressHit]] = {}
    for cid, kind, channel, purpose, reason, at in conn.execute(
        select(addresses.c.customer_id, s.kind, s.channel, s.purpose, s.reason, s.at)
        .select_from(address_suppressions.join(addresses, addresses.c.value_hash == s.value_hash))
        .where(addresses.c.customer_id.in_(customer_ids))
    ):
        found.setdefault(cid, []).append(_hit(kind, channel, purpose, reason, at))
    return {cid: tuple(h) for cid, h in found.items()}
