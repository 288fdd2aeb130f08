"""Who the customer is: ids merged into one customer, and suppression by address.

**Ids and merges.** A customer may be known by several ids: an anonymous browser id
before sign-in, a user id after, several CRM records. A merge joins ids into one group
whose *canonical* id is the least of them, ordering ids held by nobody but an address
(`addr:...`, see `address_customer_id`) after every other id: the choice depends only on
the set of ids, so merges are associative and order-independent. Each other id's row in
`customers` keeps `canonical_id` pointing at it (always directly, never a chain) and its
events, contacts and decisions move to the canonical id, where they fold with the others
by event time. Later reads and writes for any id of the group resolve to the canonical
id first. The pointer lives in the customer row itself because the row lock that
serializes deciders (`Statements.lock_customer`) then also sees a merge that committed
while a decider waited: the decider starts over on the new canonical id.

Merges queue behind each other on the identity lock (`lock_groups`, the `settings`
secret row), which erasures and profiles that merge also take, so a group only changes
under it; then they lock every row of the ids they join (in id order, after the identity
lock: the store's lock order, see `tactful.store.sql`), so no decision or event for them
runs half before, half after.

**Suppression by address.** An opt-out (global, by channel or by purpose) is recorded
against the customer and against the addresses it covers, as keyed hashes with the scope:
a global or purpose opt-out covers all of the customer's phones and emails, a channel
opt-out the addresses of that channel (`tactful.addresses.channel_kind`). Another record
holding one of those addresses is then suppressed for that scope from its first
decision. An opt-in (or re-subscribe) for the same scope lifts the hashes of the
customer's addresses, if it came after them. Erasure adds a global suppression of the
customer's addresses and keeps every hash.

**The suppression token.** Every transaction that changes the suppression list by address
also writes a new random value to the `settings` row `address-suppressions`, after its
customer row locks and before it touches `address_suppressions` (`new_token`): writers
of the list queue on the token, never on each other's entries in opposite orders, and
none waits for a customer row while holding it. `decide` reads the token in its locking
statement (without locking it) and keeps each
customer's matching entries for as long as the token and the customer's addresses stay
the same, so a customer decided again costs no suppression query, and a suppression
committed by any process is seen by every later decision. Every process writing to a
database must run code that writes the token (this one or later).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Insert

from tactful.addresses import channel_kind
from tactful.model import CustomerProfile, EventKind
from tactful.store.base import AddressHit, IdentityEntry, MergeResult
from tactful.store.sql import (
    _address_hashes,
    _profile_data,
    _profile_of,
    address_lifts,
    address_suppressions,
    addresses,
    contacts,
    customers,
    decisions,
    events,
    identity_log,
    keyed_hash,
    settings,
)
from tactful.store.statements import Cursor, Spelling

#: Ids of customers known only by an address start with this (the rest is a keyed hash).
ADDRESS_PREFIX = "addr:"
#: Any channel or any purpose, in `address_suppressions`.
ANY = "*"
#: The `settings` row whose value changes with every change to `address_suppressions`.
TOKEN_KEY = "address-suppressions"
#: Customers whose matching suppression entries `DecideStatements` keeps.
HITS_CACHE_SIZE = 20_000

OPT_OUTS = frozenset({EventKind.OPTED_OUT, EventKind.UNSUBSCRIBED, EventKind.COMPLAINED})
OPT_INS = frozenset({EventKind.OPTED_IN, EventKind.SUBSCRIBED})

Touch = Callable[[Connection, Iterable[str]], None]
InsertIgnoring = Callable[..., Insert]


def address_customer_id(kind: str, value_hash: str) -> str:
    """The id of the customer known only by this address: derived from its keyed hash."""
    return f"{ADDRESS_PREFIX}{kind}:{value_hash[:40]}"


def is_address_id(customer_id: str) -> bool:
    return customer_id.startswith(ADDRESS_PREFIX)


def canonical_order(customer_id: str) -> tuple[bool, str]:
    """Sort key of ids in a group: the first is the canonical id."""
    return (is_address_id(customer_id), customer_id)


# -- resolving ids -------------------------------------------------------------------------


def resolve(conn: Connection, ids: Iterable[str]) -> dict[str, str]:
    """Each id -> the canonical id it resolves to (itself when unmerged or unknown)."""
    wanted = sorted(set(ids))
    found = {i: i for i in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            select(customers.c.customer_id, customers.c.canonical_id).where(
                customers.c.customer_id.in_(chunk), customers.c.canonical_id.is_not(None)
            )
        )
        for cid, canonical in rows:
            found[cid] = canonical
    return found


def group(conn: Connection, canonical_id: str) -> list[str]:
    """The canonical id and every id merged into it, canonical first."""
    rows = conn.execute(
        select(customers.c.customer_id).where(customers.c.canonical_id == canonical_id)
    ).scalars()
    return [canonical_id, *sorted(rows, key=canonical_order)]


# -- merging -------------------------------------------------------------------------------


def lock_groups(conn: Connection) -> None:
    """Take the identity lock for the rest of the transaction: merges, erasures and
    profiles that merge queue here, so no group of ids changes while it is held. First
    of all locks (see the lock order in `tactful.store.sql`)."""
    conn.execute(select(settings.c.key).where(settings.c.key == "secret").with_for_update())


def members_of(conn: Connection, ids: Iterable[str]) -> set[str]:
    """The ids and every id in a group with any of them (stable under `lock_groups`)."""
    wanted = set(ids)
    members = set(wanted)
    for canonical in set(resolve(conn, wanted).values()):
        members.update(group(conn, canonical))
    return members


def merged_already(conn: Connection, ids: Sequence[str]) -> MergeResult | None:
    """What `merge` would answer if these ids are one customer already (it would change
    nothing); None if a merge has work to do. A read: Segment sends both ids with every
    message after sign-in, and merges only join groups, so this is usually the answer."""
    resolved = resolve(conn, ids)
    targets = set(resolved.values())
    if len(targets) != 1:
        return None
    (target,) = targets
    row = conn.execute(
        select(customers.c.canonical_id).where(customers.c.customer_id == target)
    ).first()
    if row is None or row.canonical_id is not None:
        return None
    members = group(conn, target)
    if min(members, key=canonical_order) != target:
        return None
    return MergeResult(target, (), tuple(sorted(members, key=canonical_order)))


def merge_profiles(canonical_id: str, profiles: Sequence[CustomerProfile]) -> CustomerProfile:
    """One profile from several: every phone and email, consent refused if any record
    refused it, and where records disagree on a time zone, country, subdivision or
    preferences, the alphabetically first (a choice that depends on the set of records
    alone, so merging in any grouping or order gives the same profile; PATCH the merged
    customer to correct it)."""

    def least(name: str) -> Any:
        return min((getattr(p, name) for p in profiles if getattr(p, name)), default=None)

    consent: dict[str, bool] = {}
    for p in profiles:
        for key, value in p.consent.items():
            consent[key] = consent.get(key, True) and bool(value)
    preferences = min(
        (dict(p.preferences) for p in profiles if p.preferences),
        key=lambda d: json.dumps(d, sort_keys=True, default=str),
        default={},
    )
    return CustomerProfile(
        canonical_id,
        timezone=least("timezone"),
        country=least("country"),
        subdivision=least("subdivision"),
        phones=tuple(sorted({x for p in profiles for x in p.phones})),
        emails=tuple(sorted({x for p in profiles for x in p.emails})),
        consent=dict(sorted(consent.items())),
        preferences=preferences,
    )


def merge(
    conn: Connection,
    ids: Sequence[str],
    *,
    at: datetime,
    via: str,
    reference: str | None,
    now: datetime,
    secret: bytes,
    touch: Touch,
) -> MergeResult:
    """Join `ids` (and every id already merged with any of them) into one customer, in the
    caller's write transaction. Idempotent: merging ids already merged changes nothing and
    logs nothing. `touch` makes missing customer rows, bumps versions and locks the rows
    (all of them in one call: the lock order). A caller holding customer rows already
    must hold the identity lock and those of all `members_of(ids)`."""
    lock_groups(conn)  # merges queue here, one at a time: a group only changes under it
    members = members_of(conn, ids)
    target = min(members, key=canonical_order)
    existing = {
        r.customer_id: r
        for r in conn.execute(
            select(customers.c.customer_id, customers.c.canonical_id).where(
                customers.c.customer_id.in_(sorted(members))
            )
        )
    }
    joined = tuple(
        sorted(
            (
                m
                for m in members
                if m != target and (m not in existing or existing[m].canonical_id != target)
            ),
            key=canonical_order,
        )
    )
    target_row = existing.get(target)
    if not joined and target_row is not None and target_row.canonical_id is None:
        return MergeResult(target, (), tuple(sorted(members, key=canonical_order)))

    touch(conn, members)  # rows exist from here, locked on PostgreSQL, versions bumped
    order = sorted(members, key=canonical_order)
    # Read under the locks: a profile written just before the merge is not lost.
    stored = {
        cid: profile
        for cid, profile in conn.execute(
            select(customers.c.customer_id, customers.c.profile).where(
                customers.c.customer_id.in_(order)
            )
        )
    }
    profiles = [_profile_of(m, stored.get(m)) for m in order]
    merged_profile = merge_profiles(target, profiles)
    duplicates = select(events.c.event_id).where(
        events.c.customer_id == target, events.c.event_id.is_not(None)
    )
    for m in order[1:]:
        # An event seen under two ids (one message id) is kept once.
        conn.execute(
            delete(events).where(events.c.customer_id == m, events.c.event_id.in_(duplicates))
        )
        for table in (events, contacts, decisions):
            conn.execute(update(table).where(table.c.customer_id == m).values(customer_id=target))
        conn.execute(delete(addresses).where(addresses.c.customer_id == m))
        # The merged profile lives on the canonical row; this one keeps only its pointer.
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == m)
            .values(canonical_id=target, profile={}, updated=now)
        )
    conn.execute(
        update(customers)
        .where(customers.c.customer_id == target)
        .values(canonical_id=None, profile=_profile_data(merged_profile), updated=now)
    )
    write_addresses(conn, secret, merged_profile)
    conn.execute(
        insert(identity_log).values(
            canonical_id=target,
            merged_ids=list(joined),
            at=at,
            via=via,
            reference=reference,
            recorded_at=now,
        )
    )
    return MergeResult(target, joined, tuple(order))


def address_customers(conn: Connection, hashes: Iterable[tuple[str, str]]) -> list[str]:
    """Canonical ids of the customers known only by one of these (kind, hash) addresses."""
    ids = sorted({address_customer_id(kind, h) for kind, h in hashes})
    if not ids:
        return []
    rows = conn.execute(
        select(customers.c.customer_id).where(
            customers.c.customer_id.in_(ids), customers.c.canonical_id.is_(None)
        )
    )
    return sorted(rows.scalars())


def write_addresses(conn: Connection, secret: bytes, profile: CustomerProfile) -> None:
    """Replace the customer's rows in the address index with those of `profile`."""
    conn.execute(delete(addresses).where(addresses.c.customer_id == profile.customer_id))
    rows = [
        {"kind": kind, "value_hash": h, "customer_id": profile.customer_id}
        for kind, h in sorted(_address_hashes(secret, profile))
    ]
    if rows:
        conn.execute(insert(addresses), rows)


def log_of(conn: Connection, members: Sequence[str]) -> list[IdentityEntry]:
    """The merges that built this group, oldest first."""
    rows = conn.execute(
        select(identity_log)
        .where(identity_log.c.canonical_id.in_(list(members)))
        .order_by(identity_log.c.recorded_at, identity_log.c.id)
    )
    return [
        IdentityEntry(r.canonical_id, tuple(r.merged_ids), r.at, r.via, r.reference, r.recorded_at)
        for r in rows
    ]


# -- suppression by address ----------------------------------------------------------------


def optout_scope(kind: str, props: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The (channel, purpose) an opt-out or opt-in event covers, None meaning any: the same
    reading as the ledger's fold (`CustomerState`), so both suppress the same scope."""
    channel = str(props["channel"]) if props.get("channel") else None
    purpose = str(props["purpose"]) if props.get("purpose") else None
    if kind == EventKind.COMPLAINED and (channel, purpose) == (None, None):
        return (channel or "email", "marketing")
    if kind == EventKind.OPTED_OUT and channel is None:
        return (None, None)
    return (channel, purpose)


def _covered(hashes: Iterable[tuple[str, str]], channel: str | None) -> list[tuple[str, str]]:
    """The (kind, hash) addresses an opt-out of `channel` (None: every channel) covers."""
    wanted = None if channel is None else channel_kind(channel)
    if channel is not None and wanted is None:
        return []
    return sorted((k, h) for k, h in hashes if wanted is None or k == wanted)


def customer_hashes(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, set[tuple[str, str]]]:
    """(kind, hash) of each customer's addresses, from the address index."""
    found: dict[str, set[tuple[str, str]]] = {c: set() for c in customer_ids}
    if not customer_ids:
        return found
    rows = conn.execute(
        select(addresses.c.customer_id, addresses.c.kind, addresses.c.value_hash).where(
            addresses.c.customer_id.in_(list(customer_ids))
        )
    )
    for cid, kind, h in rows:
        found[cid].add((kind, h))
    return found


def record_consent(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    insert_ignoring: InsertIgnoring,
) -> None:
    """Suppress (or lift) the addresses covered by the opt-outs (opt-ins) among stored
    event rows (`customer_id`, `kind`, `at`, `properties`), in the caller's transaction,
    which holds those customers' row locks; a new suppression token first (see the
    module)."""
    relevant = [r for r in rows if r["kind"] in OPT_OUTS or r["kind"] in OPT_INS]
    if not relevant:
        return
    held = customer_hashes(conn, sorted({r["customer_id"] for r in relevant}))
    changes = []
    for r in sorted(relevant, key=lambda r: r["at"]):
        channel, purpose = optout_scope(r["kind"], r["properties"])
        covered = _covered(held[r["customer_id"]], channel)
        if covered:
            changes.append((r, channel, purpose, covered))
    if not changes:
        return
    new_token(conn, insert_ignoring)
    for r, channel, purpose, covered in changes:
        if r["kind"] in OPT_OUTS:
            suppress(
                conn,
                unlifted(conn, covered, channel, purpose, at=r["at"]),
                channel,
                purpose,
                reason=str(r["kind"]),
                at=r["at"],
                now=now,
                insert_ignoring=insert_ignoring,
            )
        else:
            lift(
                conn,
                [h for _, h in covered],
                channel,
                purpose,
                at=r["at"],
                insert_ignoring=insert_ignoring,
            )


def new_token(conn: Connection, insert_ignoring: InsertIgnoring) -> None:
    """Write a new suppression token: in every transaction that changes the list, before
    the change (its row lock queues those writers; see the module)."""
    token = secrets.token_bytes(16)
    conn.execute(insert_ignoring(settings, ["key"]), [{"key": TOKEN_KEY, "value": token}])
    conn.execute(update(settings).where(settings.c.key == TOKEN_KEY).values(value=token))


def suppress(
    conn: Connection,
    covered: Sequence[tuple[str, str]],
    channel: str | None,
    purpose: str | None,
    *,
    reason: str,
    at: datetime,
    now: datetime,
    insert_ignoring: InsertIgnoring,
) -> None:
    """Add (kind, hash) addresses to the suppression list for a scope (an earlier entry for
    the same scope stays as it is)."""
    if not covered:
        return
    conn.execute(
        insert_ignoring(address_suppressions, ["value_hash", "channel", "purpose"]),
        [
            {
                "value_hash": h,
                "channel": channel or ANY,
                "purpose": purpose or ANY,
                "kind": kind,
                "reason": reason,
                "at": at,
                "created_at": now,
            }
            for kind, h in covered
        ],
    )


def lift(
    conn: Connection,
    hashes: Sequence[str],
    channel: str | None,
    purpose: str | None,
    *,
    at: datetime,
    insert_ignoring: InsertIgnoring,
) -> None:
    """Lift suppressions of these addresses set before `at`: for exactly this scope, or
    every scope for an opt-in that names none (as the ledger's fold does). At the same
    instant the suppression wins. The lift is remembered (`address_lifts`, the latest per
    address and scope), so that an older opt-out arriving later does not undo it."""
    if not hashes:
        return
    s = address_suppressions.c
    where = and_(s.value_hash.in_(list(hashes)), s.at < at)
    if (channel, purpose) != (None, None):
        where = and_(where, s.channel == (channel or ANY), s.purpose == (purpose or ANY))
    conn.execute(delete(address_suppressions).where(where))
    scope = {"channel": channel or ANY, "purpose": purpose or ANY}
    conn.execute(
        insert_ignoring(address_lifts, ["value_hash", "channel", "purpose"]),
        [{"value_hash": h, **scope, "at": at} for h in hashes],
    )
    lifts = address_lifts.c
    conn.execute(
        update(address_lifts)
        .where(
            lifts.value_hash.in_(list(hashes)),
            lifts.channel == scope["channel"],
            lifts.purpose == scope["purpose"],
            lifts.at < at,
        )
        .values(at=at)
    )


def unlifted(
    conn: Connection,
    covered: Sequence[tuple[str, str]],
    channel: str | None,
    purpose: str | None,
    *,
    at: datetime,
) -> list[tuple[str, str]]:
    """The (kind, hash) addresses an opt-out at `at` for this scope still suppresses: those
    no later opt-in lifted (for this scope, or for every scope). By event time, as the
    ledger's own fold: an opt-out that arrives after a newer opt-in changes nothing."""
    if not covered:
        return []
    lifts = address_lifts.c
    later = conn.execute(
        select(lifts.value_hash).where(
            lifts.value_hash.in_([h for _, h in covered]),
            lifts.at > at,
            or_(
                and_(lifts.channel == (channel or ANY), lifts.purpose == (purpose or ANY)),
                and_(lifts.channel == ANY, lifts.purpose == ANY),
            ),
        )
    )
    lifted = {h for (h,) in later}
    return [(kind, h) for kind, h in covered if h not in lifted]


def erased_addresses(
    conn: Connection,
    hashes: Iterable[tuple[str, str]],
    *,
    now: datetime,
    insert_ignoring: InsertIgnoring,
) -> None:
    """An erased customer's addresses: suppressed for everything, kept for good, after a
    new suppression token (see the module)."""
    covered = sorted(hashes)
    if not covered:
        return
    new_token(conn, insert_ignoring)
    suppress(
        conn,
        covered,
        None,
        None,
        reason="erased",
        at=now,
        now=now,
        insert_ignoring=insert_ignoring,
    )


def hits_for(conn: Connection, value_hashes: Sequence[str]) -> list[AddressHit]:
    """Suppression entries of these address hashes."""
    s = address_suppressions.c
    rows = conn.execute(
        select(s.kind, s.channel, s.purpose, s.reason, s.at).where(
            s.value_hash.in_(list(value_hashes))
        )
    )
    return [_hit(*r) for r in rows]


def customer_hits(conn: Connection, customer_id: str) -> list[AddressHit]:
    """Suppression entries of the customer's addresses."""
    s = address_suppressions.c
    rows = conn.execute(
        select(s.kind, s.channel, s.purpose, s.reason, s.at)
        .select_from(address_suppressions.join(addresses, addresses.c.value_hash == s.value_hash))
        .where(addresses.c.customer_id == customer_id)
    )
    return [_hit(*r) for r in rows]


def _hit(kind: str, channel: str, purpose: str, reason: str, at: datetime) -> AddressHit:
    return AddressHit(
        kind=kind,
        channel=None if channel == ANY else channel,
        purpose=None if purpose == ANY else purpose,
        reason=reason,
        at=at,
    )


# -- the decide path, in the driver's SQL ------------------------------------------------


#: What `DecideStatements.lock` gives: (canonical id, profile, version, erased, moved to,
#: suppression token).
Locked = tuple[str, Any, int, bool, str | None, bytes | None]


class DecideStatements:
    """The identity-aware lock and the address check of `SqlStore.decide`."""

    def __init__(self, spelling: Spelling) -> None:
        self.spelling = s = spelling
        #: (customer id, to hash) -> (token, addresses, entries) of the last read.
        self._kept: dict[tuple[str, str | None], tuple[bytes, object, tuple[AddressHit, ...]]]
        self._kept = {}
        self._kept_lock = threading.Lock()
        #: Decisions whose suppression entries came from `_kept` (for tests and metrics).
        self.cached = 0

        def sql(text: str) -> str:
            return text.replace("?", s.param)

        # The customer row of the id's canonical id, locked: its own `canonical_id` is read
        # after the lock, so a merge that committed meanwhile shows (the caller retries).
        self._lock = sql(
            "SELECT customer_id, profile, version, canonical_id, "
            "EXISTS (SELECT 1 FROM suppressions WHERE key_hash = ?), "
            f"(SELECT value FROM settings WHERE key = '{TOKEN_KEY}') FROM customers "
            "WHERE customer_id = COALESCE("
            "(SELECT r.canonical_id FROM customers r WHERE r.customer_id = ?), ?)" + s.lock
        )
        self._erased = sql("SELECT 1 FROM suppressions WHERE key_hash = ?")
        self._lock_many = (
            "SELECT q.asked, c.customer_id, c.profile, c.version, c.canonical_id, "
            "EXISTS (SELECT 1 FROM suppressions WHERE key_hash = q.id_hash), "
            f"(SELECT value FROM settings WHERE key = '{TOKEN_KEY}') "
            "FROM unnest(%s::text[], %s::text[]) AS q(asked, id_hash) "
            "JOIN customers c ON c.customer_id = COALESCE("
            "(SELECT r.canonical_id FROM customers r WHERE r.customer_id = q.asked), q.asked) "
            "ORDER BY c.customer_id FOR NO KEY UPDATE OF c"
            if s.lock  # rows are locked (PostgreSQL); the SQL is PostgreSQL's
            else ""
        )
        self._hits = sql(
            "SELECT s.kind, s.channel, s.purpose, s.reason, s.at FROM address_suppressions s "
            "JOIN addresses a ON a.value_hash = s.value_hash WHERE a.customer_id = ?"
        )
        self._hits_to = sql(
            "SELECT kind, channel, purpose, reason, at FROM address_suppressions "
            "WHERE value_hash = ?"
        )

    def lock_many(self, cur: Cursor, asked: Sequence[tuple[str, str]]) -> dict[str, Locked]:
        """`lock` for several (customer id, id hash) pairs in one statement, the rows locked
        in canonical id order (as a merge and every other batch lock them, so two never
        deadlock): asked id -> what `lock` gives; an id without a row is left out. Only
        where the backend locks rows (PostgreSQL); elsewhere the transaction serializes
        every writer, and this gives {}."""
        if not self._lock_many:
            return {}
        ids = [customer_id for customer_id, _ in asked]
        hashes = [id_hash for _, id_hash in asked]
        cur.execute(self._lock_many, (ids, hashes))
        return {row[0]: self._locked(row[1:]) for row in cur.fetchall()}

    def erased(self, cur: Cursor, id_hash: str) -> bool:
        """Whether the id with this keyed hash was erased (only an erasure puts an id's
        hash on the suppression list)."""
        cur.execute(self._erased, (id_hash,))
        return cur.fetchone() is not None

    def lock(self, cur: Cursor, customer_id: str, id_hash: str) -> Locked | None:
        """(canonical id, profile, version, erased, moved to, suppression token) of the row
        `customer_id` resolves to, locked; `moved to` is set if it was merged away while we
        waited; the token is None until the suppression list by address first changes."""
        cur.execute(self._lock, (id_hash, customer_id, customer_id))
        row = cur.fetchone()
        return None if row is None else self._locked(row)

    @staticmethod
    def _locked(row: Sequence[Any]) -> Locked:
        token = None if row[5] is None else bytes(row[5])
        return row[0], row[1], int(row[2]), bool(row[4]), row[3], token

    def hits(
        self,
        cur: Cursor,
        customer_id: str,
        to_hash: str | None,
        token: bytes | None = None,
        held: object = None,
    ) -> list[AddressHit]:
        """Suppression entries of the customer's addresses and of `to_hash`: kept from the
        last call for the same customer and `to_hash` while the suppression `token` (read
        in this transaction) and `held` (the customer's addresses as the profile lists
        them) are the same; read again otherwise, and always while the token is None."""
        key = (customer_id, to_hash)
        if token is not None:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == token and kept[1] == held:
                self.cached += 1
                return list(kept[2])
        time_out = self.spelling.time_out
        cur.execute(self._hits, (customer_id,))
        rows = list(cur.fetchall())
        if to_hash is not None:
            cur.execute(self._hits_to, (to_hash,))
            rows.extend(cur.fetchall())
        found = [_hit(k, c, p, r, time_out(a)) for k, c, p, r, a in rows]
        if token is not None:
            with self._kept_lock:
                if len(self._kept) >= HITS_CACHE_SIZE:
                    self._kept.clear()
                self._kept[key] = (token, held, tuple(found))
        return found


def to_hash(secret: bytes, kind: str, normal: str) -> str:
    """The keyed hash of an address in its hash form (see `tactful.addresses.hash_form`)."""
    return keyed_hash(secret, kind, normal)


def pseudo_profile(customer_id: str, kind: str, value: str) -> CustomerProfile:
    """The profile of a customer known only by an address: the address, nothing else (its
    zones and country come from the number)."""
    profile = CustomerProfile(customer_id)
    return (
        replace(profile, phones=(value,)) if kind == "phone" else replace(profile, emails=(value,))
    )


__all__ = [
    "ADDRESS_PREFIX",
    "DecideStatements",
    "IdentityEntry",
    "MergeResult",
    "address_customer_id",
    "address_customers",
    "canonical_order",
    "customer_hits",
    "erased_addresses",
    "group",
    "hits_for",
    "is_address_id",
    "lift",
    "lock_groups",
    "log_of",
    "members_of",
    "merge",
    "merge_profiles",
    "record_consent",
    "resolve",
    "suppress",
]
