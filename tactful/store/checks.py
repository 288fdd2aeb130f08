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

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from tactful.model import CustomerProfile
from tactful.state import CustomerState
from tactful.store.base import AddressHit, CheckState
from tactful.store.sql import (
    SqlStore,
    address_suppressions,
    addresses,
    customers,
    keyed_hash,
    suppressions,
)

#: Ids per query (an IN list well under every backend's limit on parameters).
BATCH = 5000


def load_states(
    conn: Connection, secret: bytes, store: SqlStore, customer_ids: Sequence[str]
) -> dict[str, CheckState]:
    """`CheckState` of each distinct id, in the caller's read transaction."""
    wanted = sorted(set(customer_ids))
    found: dict[str, CheckState] = {}
    for start in range(0, len(wanted), BATCH):
        found.update(_batch(conn, secret, store, wanted[start : start + BATCH]))
    return found


def _batch(
    conn: Connection, secret: bytes, store: SqlStore, ids: list[str]
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
    # Cached, or folded from the ledgers read for all of them (the store's own reads).
    at = {r.customer_id: (r.version, r.profile) for r in rows}
    states = {c: state for c, (_, state) in store._states_at(conn.connection.cursor(), at).items()}
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
