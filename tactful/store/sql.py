"""The ledger in SQL: the tables (SQLAlchemy Core) and one store over them for every backend.

`SqlStore` keeps the `Store` contract over a SQLAlchemy engine. A backend module
(`sqlite.py`, `postgresql.py`) builds the engine and says how a write transaction begins,
how migrations are locked and how "insert unless present" is spelled. `decide` locks the
customer row (`FOR NO KEY UPDATE`; SQLite ignores it and relies on `BEGIN IMMEDIATE`), so
two deciders for one customer run one after the other and never both take the last slot.

Deciding is the hot path: it runs as plain SQL on the driver (`statements.py`) and keeps
each customer's folded state in memory between decisions (`cache.py`), checked against
the customer row's `version`, which every write to that customer's ledger bumps.

**Locking.** On PostgreSQL every write transaction takes its row locks in one order, so
that no two writers can each hold what the other waits for:

1. the `settings` row `secret`, the identity lock (`identity.lock_groups`): merges,
   erasures and profiles that merge records known by an address, so a group of ids only
   changes under it (policy saves take it too);
2. `customers` rows, in id order (Python's string order), all in one statement
   (`_touch_customers`) or one by one in that order (`erase`). A writer never locks
   another customer row once it holds one: if the row it locked was merged into another
   customer meanwhile, it starts its transaction over (`StartOver`), where the id now
   resolves to the canonical row (`decide`, `add_events`, `put_profile`, holds);
3. a customer's own rows (events, contacts, decisions, addresses), written only under
   that customer's lock (the delivery workers' updates of queue and outbox rows take no
   customer lock after them, see `delivery`);
4. the `settings` row `address-suppressions` (the suppression token), then the
   suppression lists (`address_suppressions`, `address_lifts`; `suppressions` is written
   by erasures alone).

What this order cannot rule out (a lock the server takes for a constraint check, a
client on older code) the database breaks by rolling one transaction back (deadlock,
serialization failure): the store then runs that transaction again, a few times with a
short random pause (`_retrying`). Nothing was committed by the attempt rolled back, and
only a committed write is acknowledged. On SQLite one writer runs at a time and none of
this arises.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Concatenate, NamedTuple, ParamSpec, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    delete,
    exc,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.dml import Insert

from tactful.addresses import hash_form
from tactful.durations import parse_datetime
from tactful.model import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    Decision,
    Event,
    Outcome,
    PolicyRef,
    Trigger,
    Verdict,
    utc,
)
from tactful.state import CustomerState
from tactful.store.base import (
    AddressCheck,
    AddressHit,
    AlsoFn,
    ApiKey,
    AuditQuery,
    CheckState,
    Conflict,
    DecideCall,
    DecideFn,
    DecideResult,
    DecisionRecord,
    Identity,
    MergeResult,
    NotFound,
    PolicyVersion,
    StoreError,
)
from tactful.store.cache import DEFAULT_SIZE, StateCache
from tactful.store.statements import Statements, reason_of

MIGRATIONS = Path(__file__).with_name("migrations")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that goes in and comes out as an aware UTC datetime, on every backend.

    SQLite has no time zone type: values are stored as naive UTC text, which also sorts
    in time order, so range filters and cursors work there as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


def json_type() -> JSON:
    return JSON().with_variant(JSONB(), "postgresql")


def _json_default(value: object) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def json_dumps(value: object) -> str:
    """The engines' JSON serializer: datetimes as ISO text, sets as sorted lists."""
    return json.dumps(value, default=_json_default, separators=(",", ":"))


# -- tables --------------------------------------------------------------------------------

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: Installation-wide values; `secret` holds 32 random bytes made by the first migration.
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String(255), primary_key=True),
    #: timezone, country, subdivision, phones, emails, consent, preferences.
    Column("profile", json_type(), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    #: Bumped by every write to the customer's ledger (see `cache.py`); a new row starts
    #: at a random value, so a customer erased and made again never matches an old one.
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    #: Set when this id was merged into another customer: the id it resolves to (always
    #: the group's canonical id, never a chain). See `identity.py`.
    Column("canonical_id", String(255), index=True),
)

#: Keyed hashes of a customer's phones and emails: the identity index (never the values).
addresses = Table(
    "addresses",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value_hash", String(64), primary_key=True),
    Column(
        "customer_id",
        String(255),
        ForeignKey("customers.customer_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Index(None, "customer_id"),
)

_customer_fk = "customers.customer_id"

events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column(
        "customer_id", String(255), ForeignKey(_customer_fk, ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("event_id", String(255)),
    Column("properties", json_type(), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    # NULL event ids never collide, so events without an id are all kept.
    UniqueConstraint("customer_id", "event_id"),
    Index(None, "customer_id", "at"),
)

contacts = Table(
    "contacts",
    metadata,
    #: For a hold, the id of the decision that placed it.
    Column("contact_id", String(255), primary_key=True),
    Column(
        "customer_id", String(255), ForeignKey(_customer_fk, ondelete="CASCADE"), nullable=False
    ),
    Column("channel", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(32)),
    Column("hold_expires", UtcDateTime),
    Column("trigger_event", String(64)),
    Column("trigger_at", UtcDateTime),
    Column("offer", String(255)),
    Column("campaign", String(255)),
    Column("source", String(255)),
    Column("flags", json_type(), nullable=False),
    Column("tags", json_type(), nullable=False),
    Index(None, "customer_id", "at"),
)

#: The audit log: every decision, with its reasons as data.
decisions = Table(
    "decisions",
    metadata,
    Column("decision_id", String(64), primary_key=True),
    Column(
        "customer_id", String(255), ForeignKey(_customer_fk, ondelete="CASCADE"), nullable=False
    ),
    Column("channel", String(64), nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("source", String(255)),
    Column("campaign", String(255)),
    Column("verdict", String(8), nullable=False),
    Column("not_before", UtcDateTime),
    #: [{rule, kind, message, until}] of the rules that held the contact back.
    Column("reasons", json_type(), nullable=False),
    #: The same shape, for rules that flagged the contact without stopping it.
    Column("flags", json_type(), nullable=False),
    #: ",rule-a,rule-b," (reasons and flags): filtering by rule with one LIKE on any backend.
    Column("rules", Text, nullable=False),
    Column("policy_name", String(255), nullable=False),
    Column("policy_version", String(64), nullable=False),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("idempotency_key", String(255), unique=True),
    Column("proposal", json_type(), nullable=False),
    Index(None, "customer_id", "decided_at"),
    Index(None, "decided_at"),
)

policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("author", String(255)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("active", Boolean, nullable=False),
)
# At most one active policy, whatever two concurrent saves do.
Index(
    "ix_policies_one_active",
    policies.c.active,
    unique=True,
    sqlite_where=policies.c.active,
    postgresql_where=policies.c.active,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),
    Column("name", String(255)),
    Column("scopes", json_type(), nullable=False),
    #: sha256 hex of the secret; the secret itself is never stored.
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

#: Erased customers (and their addresses), as HMAC-SHA256(installation secret, "id:...").
suppressions = Table(
    "suppressions",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("scope_channel", String(64)),
    Column("scope_purpose", String(64)),
    Column("reason", String(255)),
    Column("created_at", UtcDateTime, nullable=False),
)

#: Phones and emails that opted out, as keyed hashes (never the values), with the scope
#: ("*" for any channel or purpose): a record holding one is suppressed for that scope.
address_suppressions = Table(
    "address_suppressions",
    metadata,
    Column("value_hash", String(64), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    #: What set it: unsubscribed, opted_out, complained, erased.
    Column("reason", String(64), nullable=False),
    #: When it took effect (the opt-out's event time).
    Column("at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

#: The latest opt-in that lifted suppressions of an address, per scope ("*", "*": an
#: opt-in naming no scope, which lifts every scope): an opt-out that arrives late, older
#: than that opt-in, suppresses nothing.
address_lifts = Table(
    "address_lifts",
    metadata,
    Column("value_hash", String(64), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    #: The opt-in's event time.
    Column("at", UtcDateTime, nullable=False),
)

#: Every merge of customer ids: who was joined into whom, when, and through what.
identity_log = Table(
    "identity_log",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("canonical_id", String(255), nullable=False),
    #: The ids this merge joined into `canonical_id` (JSON list).
    Column("merged_ids", json_type(), nullable=False),
    #: The merge's own time: the Segment message's timestamp, or when it was asked for.
    Column("at", UtcDateTime, nullable=False),
    #: segment-alias, segment-identify, api, address.
    Column("via", String(64), nullable=False),
    Column("reference", String(255)),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index(None, "canonical_id"),
)


# -- keyed hashes --------------------------------------------------------------------------


def keyed_hash(secret: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of "kind:value" under the installation secret, as hex."""
    message = f"{kind}:{value}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def erased_alias(id_hash: str) -> str:
    """The name decisions about an erased id are logged under: the id's keyed hash, which
    the suppression list holds already (`SqlStore.erase`), never the id."""
    return f"erased:{id_hash}"


#: What the audit log keeps of a proposal about an erased id: its shape, not its text,
#: address or tags.
_ERASED_FIELDS = ("channel", "purpose", "source", "campaign", "at", "priority")


def erased_record(recorded: Mapping[str, Any], alias: str) -> dict[str, Any]:
    return {"customer_id": alias, **{k: recorded.get(k) for k in _ERASED_FIELDS}}


def normalize_address(kind: str, value: str) -> str:
    """The form an address is hashed in (`tactful.addresses.hash_form`)."""
    return hash_form(kind, value)


def _address_hashes(secret: bytes, profile: CustomerProfile) -> set[tuple[str, str]]:
    found = set()
    for kind, values in (("phone", profile.phones), ("email", profile.emails)):
        for value in values:
            normal = normalize_address(kind, value)
            if normal:
                found.add((kind, keyed_hash(secret, kind, normal)))
    return found


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# -- rows <-> domain -----------------------------------------------------------------------


def _profile_data(profile: CustomerProfile) -> dict[str, Any]:
    return {
        "timezone": profile.timezone,
        "country": profile.country,
        "subdivision": profile.subdivision,
        "phones": list(profile.phones),
        "emails": list(profile.emails),
        "consent": dict(profile.consent),
        "preferences": dict(profile.preferences),
    }


def _profile_of(customer_id: str, data: Mapping[str, Any] | None) -> CustomerProfile:
    data = data or {}
    return CustomerProfile(
        customer_id,
        timezone=data.get("timezone"),
        country=data.get("country"),
        subdivision=data.get("subdivision"),
        phones=tuple(data.get("phones") or ()),
        emails=tuple(data.get("emails") or ()),
        consent=dict(data.get("consent") or {}),
        preferences=dict(data.get("preferences") or {}),
    )


def _contact_values(c: Contact) -> dict[str, Any]:
    return {
        "contact_id": c.contact_id,
        "customer_id": c.customer_id,
        "channel": c.channel,
        "purpose": c.purpose,
        "at": c.at,
        "status": ContactStatus(c.status).value,
        "outcome": c.outcome,
        "hold_expires": c.hold_expires,
        "trigger_event": c.trigger_event,
        "trigger_at": c.trigger_at,
        "offer": c.offer,
        "campaign": c.campaign,
        "source": c.source,
        "flags": list(c.flags),
        "tags": dict(c.tags),
    }


def _contact_of(row: Row[Any]) -> Contact:
    return Contact(
        contact_id=row.contact_id,
        customer_id=row.customer_id,
        channel=row.channel,
        purpose=row.purpose,
        at=row.at,
        status=ContactStatus(row.status),
        outcome=row.outcome,
        hold_expires=row.hold_expires,
        trigger_event=row.trigger_event,
        trigger_at=row.trigger_at,
        offer=row.offer,
        campaign=row.campaign,
        source=row.source,
        flags=tuple(row.flags or ()),
        tags=dict(row.tags or {}),
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def proposal_data(p: ContactProposal) -> dict[str, Any]:
    """A proposal in the API's field names, as the audit log keeps it."""
    return {
        "customer_id": p.customer_id,
        "channel": p.channel,
        "purpose": p.purpose,
        "at": _iso(p.at),
        "trigger": {"event": p.trigger.event, "at": _iso(p.trigger.at)} if p.trigger else None,
        "offer": p.offer,
        "campaign": p.campaign,
        "source": p.source,
        "priority": p.priority,
        "content": (
            {
                "subject": p.content.subject,
                "body": p.content.body,
                "discount": p.content.discount,
                "flags": list(p.content.flags),
            }
            if p.content
            else None
        ),
        "idempotency_key": p.idempotency_key,
        "tags": dict(p.tags),
        "to": p.to,
    }


def proposal_of(data: Mapping[str, Any]) -> ContactProposal:
    """The proposal `proposal_data` recorded (the audit log's and the queue's form)."""
    trigger = data.get("trigger")
    content = data.get("content")
    at = data.get("at")
    return ContactProposal(
        customer_id=str(data["customer_id"]),
        channel=str(data["channel"]),
        purpose=str(data["purpose"]),
        at=parse_datetime(at) if at else None,
        trigger=(
            Trigger(
                str(trigger["event"]), parse_datetime(trigger["at"]) if trigger.get("at") else None
            )
            if trigger
            else None
        ),
        offer=data.get("offer"),
        campaign=data.get("campaign"),
        source=data.get("source"),
        priority=int(data.get("priority") or 0),
        content=(
            Content(
                content.get("subject"),
                content.get("body"),
                bool(content.get("discount")),
                tuple(content.get("flags") or ()),
            )
            if content
            else None
        ),
        idempotency_key=data.get("idempotency_key"),
        tags=dict(data.get("tags") or {}),
        to=data.get("to"),
    )


def _decision_of(row: Row[Any]) -> Decision:
    return Decision(
        verdict=Verdict(row.verdict),
        reasons=tuple(reason_of(r) for r in row.reasons),
        policy=PolicyRef(row.policy_name, row.policy_version),
        at=row.at,
        not_before=row.not_before,
        flags=tuple(reason_of(r) for r in row.flags),
        decision_id=row.decision_id,
    )


def _record_of(row: Row[Any], now: datetime) -> DecisionRecord:
    status: str | None = row.contact_status
    if (
        status == ContactStatus.HELD
        and row.contact_hold_expires is not None
        and row.contact_hold_expires <= now
    ):
        status = "expired"
    return DecisionRecord(
        decision_id=row.decision_id,
        customer_id=row.customer_id,
        channel=row.channel,
        purpose=row.purpose,
        source=row.source,
        campaign=row.campaign,
        verdict=row.verdict,
        not_before=row.not_before,
        reasons=tuple(dict(r) for r in row.reasons),
        policy_name=row.policy_name,
        policy_version=row.policy_version,
        decided_at=row.decided_at,
        at=row.at,
        idempotency_key=row.idempotency_key,
        proposal=dict(row.proposal),
        status=status,
        outcome=row.contact_outcome,
    )


def _policy_of(row: Row[Any]) -> PolicyVersion:
    return PolicyVersion(
        name=row.name,
        version=row.version,
        text=row.text,
        author=row.author,
        created_at=row.created_at,
        active=bool(row.active),
    )


def _key_of(row: Row[Any]) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        scopes=frozenset(row.scopes),
        created_at=row.created_at,
        revoked=bool(row.revoked),
    )


_AUDIT_COLUMNS = (
    decisions,
    contacts.c.status.label("contact_status"),
    contacts.c.outcome.label("contact_outcome"),
    contacts.c.hold_expires.label("contact_hold_expires"),
)
_AUDIT_FROM = decisions.outerjoin(contacts, contacts.c.contact_id == decisions.c.decision_id)

#: Errors that mean the database is unreachable or refused: the service answers 503.
_UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError, exc.DisconnectionError)
#: SQLSTATEs of a transaction the server rolled back to break a deadlock or a
#: serialization conflict: running it again is safe, and usually succeeds.
_ROLLED_BACK = frozenset({"40P01", "40001"})
#: How many times a write transaction runs before its contention is reported (503).
WRITE_ATTEMPTS = 8
#: The first pause before running a rolled-back transaction again, in seconds; it
#: doubles with each attempt, and each pause is a random fraction of it.
RETRY_PAUSE = 0.004

T = TypeVar("T")


class Contention(StoreError):
    """The database rolled the transaction back to break a deadlock or a serialization
    conflict; it committed nothing and may be run again."""


class StartOver(Exception):
    """Raised inside a write transaction that must be rolled back and run again from the
    start, e.g. when the customer row it locked was merged away while it waited."""


S = TypeVar("S")
P = ParamSpec("P")


def time_ordered_id() -> str:
    """A new decision id: a UUID of version 7 (RFC 9562), the Unix time in milliseconds
    first, then 74 random bits. Ids made one after another sort one after another, so the
    audit log's and the holds' primary keys grow at one end of their indexes instead of
    touching a random page each (measured: ~8% less CPU per decision on SQLite, in
    groups of 16)."""
    random_bits = int.from_bytes(secrets.token_bytes(10), "big")
    value = (
        (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80
        | 0x7 << 76
        | (random_bits >> 62 & 0xFFF) << 64
        | 0b10 << 62
        | random_bits & (1 << 62) - 1
    )
    return str(uuid.UUID(int=value))


class _Batch:
    """What the calls decided in one transaction share: `locked`, the customer rows the
    batch locked up front (asked id -> row, see `DecideStatements.lock_many`); `decided`,
    the canonical ids decided so far (a row locked up front is stale for those); `states`,
    the customers' states the transaction read or changed, by version, which the state
    cache gets once it commits."""

    __slots__ = ("decided", "locked", "states")

    def __init__(self) -> None:
        self.locked: dict[str, identity.Locked] = {}
        self.decided: set[str] = set()
        self.states: dict[str, tuple[int, CustomerState]] = {}


class _Prepared(NamedTuple):
    """A decide call with what stays the same each time its transaction runs."""

    call: DecideCall
    id_hash: str
    to_hash: str | None
    decision_id: str
    recorded: dict[str, Any]


def retried(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
    """A store method that makes one write transaction, run again as `SqlStore._retrying`
    says when the database rolls it back: each run does everything afresh (its ids, its
    reads), and only the run that committed had any effect. For methods of a `SqlStore`
    and of objects that keep one as `.store`."""

    @functools.wraps(method)
    def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        store = cast("SqlStore", getattr(self, "store", self))
        return store._retrying(lambda: method(self, *args, **kwargs))

    return run


def _rolled_back(error: BaseException) -> bool:
    detail = getattr(error, "orig", None) or error
    return getattr(detail, "sqlstate", None) in _ROLLED_BACK


def _unavailable(error: exc.SQLAlchemyError) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    return isinstance(error, exc.DBAPIError) and error.connection_invalidated


def _first_line(error: BaseException) -> str:
    detail = getattr(error, "orig", None) or error
    return str(detail).strip().splitlines()[0] if str(detail).strip() else repr(detail)


def _like_escape(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configured for the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _first_version() -> int:
    """Where a new customer row's version starts: random, never reused in practice."""
    return secrets.randbits(62)


#: How long a verified API key is trusted without asking the database again. A revoke
#: through this store drops the key at once; other processes notice within this time.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 1024


class SqlStore:
    """The `Store` contract over a SQLAlchemy engine. Thread-safe: share one per process."""

    #: URL schemes this backend serves (the registry in `tactful.store` reads these).
    schemes: ClassVar[tuple[str, ...]] = ()
    #: See `Store.remote`.
    remote: bool = False

    def __init__(
        self,
        url: str,
        engine: Engine,
        statements: Statements,
        *,
        state_cache: int = DEFAULT_SIZE,
        key_cache_seconds: float = KEY_CACHE_SECONDS,
    ) -> None:
        self.url = url
        self.engine = engine
        self._secret: bytes | None = None
        self._sql = statements
        #: Customers' folded states between decisions, valid for one row version.
        self.states = StateCache(state_cache)
        self._identity = identity.DecideStatements(statements.spelling)
        self._key_cache_seconds = key_cache_seconds
        self._keys: dict[str, tuple[float, ApiKey]] = {}
        self._keys_lock = threading.Lock()
        dbapi = engine.dialect.loaded_dbapi
        #: The driver's own errors, raised by the decide path's plain SQL.
        self._driver_errors: tuple[type[Exception], ...] = (dbapi.Error,)
        self._driver_unavailable: tuple[type[Exception], ...] = (
            dbapi.OperationalError,
            dbapi.InterfaceError,
        )

    # -- what a backend provides -----------------------------------------------------------

    def _begin(self, *, write: bool) -> AbstractContextManager[Connection]:
        """A connection inside a transaction; a write one takes the backend's write lock."""
        return self.engine.begin()

    def _write_queue(self) -> AbstractContextManager[object]:
        """Where writers of this process wait for each other before a write transaction
        on the driver (`_driver_transaction`); nothing where the database does it."""
        return nullcontext()

    #: What starts a write transaction on the driver (None: the driver starts one itself).
    _driver_begin: ClassVar[str | None] = None

    def _lock_migrations(self, conn: Connection) -> None:
        """Keep two processes from migrating at once (the write transaction may suffice)."""

    def _insert_ignoring(self, table: Table, index_elements: Sequence[str]) -> Insert:
        """INSERT that skips rows conflicting on `index_elements`."""
        raise NotImplementedError

    def _insert_or_update(
        self, table: Table, index_elements: Sequence[str], set_: Mapping[str, Any]
    ) -> Insert:
        """INSERT that updates `set_` in rows conflicting on `index_elements` instead."""
        raise NotImplementedError

    # -- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self._begin(write=write) as conn:
                yield conn
        except exc.SQLAlchemyError as error:
            if _rolled_back(error):
                raise self._contention(error) from error
            if _unavailable(error):
                raise self._store_error(error) from error
            raise
        except self._driver_errors as error:
            if _rolled_back(error):
                raise self._contention(error) from error
            if isinstance(error, self._driver_unavailable):
                raise self._store_error(error) from error
            raise

    @contextmanager
    def _driver_transaction(self) -> Iterator[Any]:
        """A DBAPI cursor in a write transaction on a pooled connection, committed at the
        end: the decide path, without SQLAlchemy's per-transaction bookkeeping (~100 µs)."""
        try:
            with self._write_queue():
                conn = self.engine.raw_connection()
                try:
                    cur = conn.cursor()
                    if self._driver_begin:
                        cur.execute(self._driver_begin)
                    yield cur
                    conn.commit()
                except BaseException:
                    try:
                        conn.rollback()
                    except self._driver_errors:
                        conn.invalidate()  # the connection is broken: the pool drops it
                    raise
                finally:
                    conn.close()
        except exc.SQLAlchemyError as error:
            if _rolled_back(error):
                raise self._contention(error) from error
            if _unavailable(error):
                raise self._store_error(error) from error
            raise
        except self._driver_errors as error:
            if _rolled_back(error):
                raise self._contention(error) from error
            if isinstance(error, self._driver_unavailable):
                raise self._store_error(error) from error
            raise

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run `attempt` (one whole write transaction: it begins, and commits before it
        returns) again when the database rolled it back for contention or it asked to
        start over; after `WRITE_ATTEMPTS` runs, a StoreError (503). Only the run that
        committed had any effect, so each run must do everything afresh."""
        for n in range(1, WRITE_ATTEMPTS + 1):
            try:
                return attempt()
            except Contention as error:
                if n == WRITE_ATTEMPTS:
                    raise StoreError(f"{error} (gave up after {n} attempts)") from error
                # Both sides of a deadlock would otherwise meet again at once.
                time.sleep(random.uniform(0, RETRY_PAUSE * 2 ** (n - 1)))
            except StartOver as error:
                if n == WRITE_ATTEMPTS:
                    raise StoreError(f"{self.url}: {error} (gave up after {n} attempts)") from error
        raise AssertionError("unreachable")

    def _write(self, work: Callable[[Connection], T]) -> T:
        """`work` in a write transaction, run again as `_retrying` says."""

        def attempt() -> T:
            with self._transaction(write=True) as conn:
                return work(conn)

        return self._retrying(attempt)

    def _store_error(self, error: BaseException) -> StoreError:
        where = self.engine.url.render_as_string(hide_password=True)
        return StoreError(f"database {where} unavailable: {_first_line(error)}")

    def _contention(self, error: BaseException) -> Contention:
        where = self.engine.url.render_as_string(hide_password=True)
        return Contention(f"database {where} rolled the transaction back: {_first_line(error)}")

    def migrate(self) -> None:
        """Create the tables on a fresh database, or upgrade an older one (every alembic head)."""
        with self._transaction(write=True) as conn:
            self._lock_migrations(conn)
            command.upgrade(alembic_config(conn), "heads")

    def close(self) -> None:
        self.engine.dispose()

    def healthy(self) -> bool:
        try:
            with self._transaction(write=False) as conn:
                conn.execute(text("SELECT 1"))
        except (StoreError, exc.SQLAlchemyError):
            return False
        return True

    def secret(self) -> bytes:
        if self._secret is None:
            with self._transaction(write=False) as conn:
                self._secret = self._read_secret(conn)
        return self._secret

    def _read_secret(self, conn: Connection) -> bytes:
        if self._secret is None:
            value = conn.execute(
                select(settings.c.value).where(settings.c.key == "secret")
            ).scalar()
            if value is None:
                raise StoreError(f"{self.url}: no installation secret; run the migrations first")
            self._secret = bytes(value)
        return self._secret

    def _touch_customers(self, conn: Connection, customer_ids: Iterable[str]) -> None:
        """Make sure the customers' rows exist and bump their versions: every write to a
        customer's ledger does this in its transaction. On PostgreSQL it also locks the
        rows (in id order, so two writers never deadlock) until the transaction ends: a
        transaction locks all its customers in one call (see the module); calling it
        again for rows it holds already only bumps their versions."""
        ids = sorted(set(customer_ids))
        if not ids:
            return
        now = _wall_clock()
        rows = [
            {
                "customer_id": i,
                "profile": {},
                "created": now,
                "updated": now,
                "version": _first_version(),
            }
            for i in ids
        ]
        bump = {"version": customers.c.version + 1}
        conn.execute(self._insert_or_update(customers, ["customer_id"], bump), rows)
        for i in ids:
            self.states.discard(i)

    def _lock_canonical(self, conn: Connection, ids: Iterable[str]) -> dict[str, str]:
        """Each id -> its canonical id, with those customers touched (and locked on
        PostgreSQL). StartOver if a merge or an erasure changed what an id resolves to
        before the lock: locking another row now could break the lock order (see the
        module), and once the rows are locked nothing changes it."""
        wanted = set(ids)
        resolved = identity.resolve(conn, wanted)
        self._touch_customers(conn, resolved.values())
        if identity.resolve(conn, wanted) != resolved:
            raise StartOver("a customer written to was merged or erased meanwhile")
        return resolved

    def _resolve_rows(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Point ledger rows at their customers' canonical ids and lock those customers
        (`_lock_canonical`); give a fresh copy of the rows to each attempt."""
        resolved = self._lock_canonical(conn, {r["customer_id"] for r in rows})
        for r in rows:
            r["customer_id"] = resolved[r["customer_id"]]

    # -- customers -------------------------------------------------------------------------

    def get_profile(self, customer_id: str) -> CustomerProfile | None:
        """The profile of the customer the id resolves to (under the canonical id)."""
        with self._transaction(write=False) as conn:
            customer_id = identity.resolve(conn, [customer_id])[customer_id]
            data = conn.execute(
                select(customers.c.profile).where(customers.c.customer_id == customer_id)
            ).first()
        return None if data is None else _profile_of(customer_id, data.profile)

    def put_profile(self, profile: CustomerProfile) -> None:
        """Write the profile of the customer its id resolves to. A customer known only by
        an address (a cold outreach, an opt-out from an unknown number) that this profile
        now holds is merged into it, so its contacts and opt-outs count here."""
        hashes = _address_hashes(self.secret(), profile)
        self._write(lambda conn: self._put_profile(conn, profile, hashes))

    def _put_profile(
        self, conn: Connection, profile: CustomerProfile, hashes: set[tuple[str, str]]
    ) -> None:
        secret = self._read_secret(conn)
        named = profile.customer_id
        canonical = identity.resolve(conn, [named])[named]
        merging = not identity.is_address_id(canonical)
        known = identity.address_customers(conn, hashes) if merging else []
        if known:
            # A merge follows: the identity lock before any customer row, and the rows of
            # everyone the merge joins in one go (the lock order, see the module).
            identity.lock_groups(conn)
            joining = identity.members_of(conn, [canonical, *known])
            self._touch_customers(conn, joining)
            locked = identity.resolve(conn, [named])[named]
        else:
            locked = self._lock_canonical(conn, [named])[named]
        if locked != canonical:
            raise StartOver(f"customer {named!r} was merged or erased meanwhile")
        profile = replace(profile, customer_id=canonical)
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == canonical)
            .values(profile=_profile_data(profile), updated=_wall_clock())
        )
        identity.write_addresses(conn, secret, profile)
        if not merging:
            return
        still = identity.address_customers(conn, hashes)  # fewer if merged meanwhile
        if not set(still) <= set(known):
            # Known by an address since the read above: their rows are not locked yet.
            raise StartOver(f"a customer holding an address of {named!r} appeared meanwhile")
        if still:
            now = _wall_clock()
            identity.merge(
                conn,
                [canonical, *still],
                at=now,
                via="address",
                reference=None,
                now=now,
                secret=secret,
                touch=self._touch_customers,
            )

    def customers_with_address(self, kind: str, value: str) -> list[str]:
        normal = normalize_address(kind, value)
        if not normal:
            return []
        with self._transaction(write=False) as conn:
            secret = self._read_secret(conn)
            query = (
                select(addresses.c.customer_id)
                .where(addresses.c.kind == kind)
                .where(addresses.c.value_hash == keyed_hash(secret, kind, normal))
                .order_by(addresses.c.customer_id)
            )
            holders = list(conn.execute(query).scalars())
            return sorted(set(identity.resolve(conn, holders).values()))

    def customer_for_address(self, kind: str, value: str, *, create: bool) -> str | None:
        holders = self.customers_with_address(kind, value)
        if len(holders) > 1:
            raise Conflict(
                f"{len(holders)} customers hold this {kind}: name the customer_id, or merge "
                "the records (POST /v1/customers/{id}/merge)"
            )
        if holders:
            return holders[0]
        normal = normalize_address(kind, value)
        if not create or not normal:
            return None
        cid = identity.address_customer_id(kind, keyed_hash(self.secret(), kind, normal))
        if self.get_profile(cid) is None:
            self.put_profile(identity.pseudo_profile(cid, kind, normal))
        return cid

    def _to_hash(self, to: str | None) -> str | None:
        if not to:
            return None
        kind = "email" if "@" in to else "phone"
        normal = normalize_address(kind, to)
        return keyed_hash(self.secret(), kind, normal) if normal else None

    def address_hits(self, customer_id: str, to: str | None = None) -> list[AddressHit]:
        to_hash = self._to_hash(to)
        with self._transaction(write=False) as conn:
            canonical = identity.resolve(conn, [customer_id])[customer_id]
            hits = identity.customer_hits(conn, canonical)
            if to_hash is not None:
                hits.extend(identity.hits_for(conn, [to_hash]))
        return hits

    def merge(
        self,
        ids: Sequence[str],
        *,
        at: datetime,
        via: str,
        reference: str | None = None,
        now: datetime,
    ) -> MergeResult:
        if not ids:
            raise ValueError("ids: give at least one customer id to merge")
        with self._transaction(write=False) as conn:
            done = identity.merged_already(conn, list(ids))
        if done is not None:
            return done  # nothing to join: no write transaction, no merge lock
        return self._write(
            lambda conn: identity.merge(
                conn,
                list(ids),
                at=at,
                via=via,
                reference=reference,
                now=now,
                secret=self._read_secret(conn),
                touch=self._touch_customers,
            )
        )

    def identity(self, customer_id: str) -> Identity:
        with self._transaction(write=False) as conn:
            canonical = identity.resolve(conn, [customer_id])[customer_id]
            members = identity.group(conn, canonical)
            log = identity.log_of(conn, members)
        return Identity(canonical, tuple(members[1:]), tuple(log))

    def list_customers(self, *, limit: int = 100, after: str | None = None) -> list[str]:
        """Canonical customer ids in order (ids merged into another are not listed)."""
        query = (
            select(customers.c.customer_id)
            .where(customers.c.canonical_id.is_(None))
            .order_by(customers.c.customer_id)
        )
        if after is not None:
            query = query.where(customers.c.customer_id > after)
        with self._transaction(write=False) as conn:
            return list(conn.execute(query.limit(max(0, limit))).scalars())

    def load_state(self, customer_id: str) -> CustomerState:
        with self._transaction(write=False) as conn:
            customer_id = identity.resolve(conn, [customer_id])[customer_id]
            row = conn.execute(
                select(customers.c.profile, customers.c.version).where(
                    customers.c.customer_id == customer_id
                )
            ).first()
            if row is None:
                return CustomerState(CustomerProfile(customer_id))
            cached = self.states.get(customer_id, row.version)
            if cached is not None:
                return cached.copy()
            # Not cached from here: only a locked read (in `decide`) fills the cache.
            return self._state(conn.connection.cursor(), customer_id, row.profile)

    def load_states(self, customer_ids: Sequence[str]) -> dict[str, CheckState]:
        with self._transaction(write=False) as conn:
            return checks.load_states(conn, self._read_secret(conn), self, customer_ids)

    def _state(
        self, cur: Any, customer_id: str, profile: Mapping[str, Any] | None
    ) -> CustomerState:
        events_, contacts_ = self._sql.ledger(cur, customer_id)
        return CustomerState(_profile_of(customer_id, profile), events_, contacts_)

    def erase(self, customer_id: str, *, now: datetime) -> bool:
        """Erase the customer the id resolves to, under every id merged into it; the ids
        and addresses stay on the suppression lists as keyed hashes. A decision racing
        the erasure either commits first (and is erased with the customer) or runs after
        it, on an erased id."""
        return self._write(lambda conn: self._erase(conn, customer_id, now))

    def _erase(self, conn: Connection, customer_id: str, now: datetime) -> bool:
        secret = self._read_secret(conn)
        identity.lock_groups(conn)  # no merge joins or moves an id until this commits
        canonical = identity.resolve(conn, [customer_id])[customer_id]
        members = sorted({customer_id, *identity.group(conn, canonical)})
        # A row for an id never seen, so that a first decision for it waits for the
        # erasure (and then finds it erased) instead of slipping in beside it.
        placeholder = conn.execute(
            self._insert_ignoring(customers, ["customer_id"])
            .values(
                customer_id=customer_id,
                profile={},
                created=now,
                updated=now,
                version=_first_version(),
            )
            .returning(customers.c.customer_id)
        ).first()
        # Lock every row before deleting anything (in id order, as every writer does:
        # FOR NO KEY UPDATE), so that writers holding one of them finish first and their
        # rows go too. The deletes below need more, which waits for nothing then: a writer
        # of these customers waits for the rows this transaction holds.
        rows = {}
        for m in members:
            rows[m] = conn.execute(
                select(customers.c.profile)
                .where(customers.c.customer_id == m)
                .with_for_update(key_share=True)
            ).first()
        row = rows[canonical]
        existed = row is not None and placeholder is None
        keys = {keyed_hash(secret, "id", m) for m in members}
        held: set[tuple[str, str]] = set()
        if row is not None:
            held = _address_hashes(secret, _profile_of(canonical, row.profile))
            keys |= {h for _, h in held}
        for table in (addresses, events, contacts, decisions, delivery.outbox, customers):
            # Queue items and reminders go with the customer row (ON DELETE CASCADE);
            # outbox rows carry the id in their payloads, and take their attempts along.
            conn.execute(delete(table).where(table.c.customer_id.in_(members)))
        conn.execute(delete(identity_log).where(identity_log.c.canonical_id.in_(members)))
        for m in members:
            self.states.discard(m)
        conn.execute(
            self._insert_ignoring(suppressions, ["key_hash"]),
            [
                {
                    "key_hash": k,
                    "scope_channel": None,
                    "scope_purpose": None,
                    "reason": "erased",
                    "created_at": now,
                }
                for k in sorted(keys)
            ],
        )
        # Last: the suppression token, then the addresses (see `identity`).
        identity.erased_addresses(conn, held, now=now, insert_ignoring=self._insert_ignoring)
        return existed

    def suppressed(self, customer_id: str) -> bool:
        key = keyed_hash(self.secret(), "id", customer_id)
        with self._transaction(write=False) as conn:
            found = conn.execute(
                select(suppressions.c.key_hash).where(suppressions.c.key_hash == key)
            ).first()
        return found is not None

    # -- events ----------------------------------------------------------------------------

    def add_events(self, events_: Sequence[Event], *, received_at: datetime) -> int:
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for e in events_:
            if e.event_id is not None:
                if (e.customer_id, e.event_id) in seen:
                    continue
                seen.add((e.customer_id, e.event_id))
            rows.append(
                {
                    "customer_id": e.customer_id,
                    "kind": str(e.kind),
                    "at": e.at,
                    "event_id": e.event_id,
                    "properties": dict(e.properties),
                    "received_at": received_at,
                }
            )
        if not rows:
            return 0
        stmt = self._insert_ignoring(events, ["customer_id", "event_id"]).returning(
            events.c.customer_id, events.c.kind, events.c.at, events.c.properties
        )

        def work(conn: Connection) -> int:
            resolved = [dict(r) for r in rows]  # each attempt resolves the ids afresh
            self._resolve_rows(conn, resolved)
            inserted = conn.execute(stmt, resolved).all()
            # Call-back reminders follow these events: the worker looks at these customers.
            delivery.mark_reminder_events(conn, self, resolved, received_at)
            # Opt-outs (and opt-ins) among the new events suppress (lift) their addresses;
            # last, as it takes the suppression token (see `identity`).
            identity.record_consent(
                conn,
                [dict(r._mapping) for r in inserted],
                now=received_at,
                insert_ignoring=self._insert_ignoring,
            )
            return len(inserted)

        return self._write(work)

    # -- decisions, holds, outcomes ----------------------------------------------------------

    def decide(
        self,
        proposal: ContactProposal,
        decide_fn: DecideFn,
        *,
        now: datetime,
        hold_ttl_seconds: float,
        hold: bool = True,
        if_suppressed: DecideFn | None = None,
        also: AlsoFn | None = None,
        address_check: AddressCheck | None = None,
    ) -> tuple[Decision, bool]:
        """Decide and place the hold in one transaction, run again if a merge or an
        erasure of the customer commits while it waits for the customer's lock: it then
        follows the merge to the canonical id, or decides for the erased id (suppressed).
        `also` runs in each attempt; only the committed one's writes count."""
        call = DecideCall(
            proposal, decide_fn, now, hold_ttl_seconds, hold, if_suppressed, also, address_check
        )
        (answer,) = self._decide_together([self._prepared(call)])
        return answer

    def decide_many(self, calls: Sequence[DecideCall]) -> list[DecideResult]:
        prepared = [self._prepared(call) for call in calls]
        if not prepared:
            return []
        try:
            return list(self._decide_together(prepared))
        except Exception as error:
            if len(prepared) == 1:
                return [error]
        # One call failed (or the store did): nothing was kept. Each runs again alone, so
        # that one call's failure is its own and the others are answered as if alone.
        results: list[DecideResult] = []
        for one in prepared:
            try:
                results.append(self._decide_together([one])[0])
            except Exception as error:
                results.append(error)
        return results

    def _prepared(self, call: DecideCall) -> _Prepared:
        """What stays the same each time the call's transaction runs: its ids, the
        proposal as the audit log keeps it."""
        return _Prepared(
            call,
            keyed_hash(self.secret(), "id", call.proposal.customer_id),
            self._to_hash(call.proposal.to),
            time_ordered_id(),
            proposal_data(call.proposal),
        )

    def _decide_together(self, prepared: Sequence[_Prepared]) -> list[tuple[Decision, bool]]:
        """The calls in one write transaction, run again as `_retrying` says. The states
        they read and the holds they place go to the state cache once it committed."""

        def attempt() -> list[tuple[Decision, bool]]:
            batch = _Batch()
            with self._driver_transaction() as cur:
                self._lock_together(cur, prepared, batch)
                answers = [self._decide_in(cur, one, batch) for one in prepared]
            for customer_id, (version, state) in batch.states.items():
                self.states.put(customer_id, version, state)
            return answers

        return self._retrying(attempt)

    def _lock_together(self, cur: Any, prepared: Sequence[_Prepared], batch: _Batch) -> None:
        """Where a statement is a round trip to a server, the customers of several calls
        are locked in one (`DecideStatements.lock_many`), and the ledgers of those whose
        states are not cached read in two, not two each."""
        if len(prepared) < 2:
            return
        asked = [(one.call.proposal.customer_id, one.id_hash) for one in prepared]
        batch.locked = self._identity.lock_many(cur, asked)
        json_out = self._sql.spelling.json_out
        rows = {
            canonical: (version, json_out(profile))
            for canonical, profile, version, _, moved, _ in batch.locked.values()
            if moved is None
        }
        batch.states.update(self._states_at(cur, rows))

    def _states_at(
        self, cur: Any, rows: Mapping[str, tuple[int, Mapping[str, Any] | None]]
    ) -> dict[str, tuple[int, CustomerState]]:
        """Each customer's state at a version (customer id -> (version, stored profile)):
        the cached one, or folded from ledgers read for all of them at once."""
        found: dict[str, tuple[int, CustomerState]] = {}
        unknown: list[str] = []
        for customer_id, (version, _) in rows.items():
            state = self.states.get(customer_id, version)
            if state is None:
                unknown.append(customer_id)
            else:
                found[customer_id] = (version, state)
        if unknown:
            for customer_id, (events_, contacts_) in self._sql.ledgers(cur, unknown).items():
                version, profile = rows[customer_id]
                profiled = _profile_of(customer_id, profile)
                found[customer_id] = (version, CustomerState(profiled, events_, contacts_))
        return found

    def _decide_in(self, cur: Any, one: _Prepared, batch: _Batch) -> tuple[Decision, bool]:
        """One call inside the transaction (see `_Batch`)."""
        call = one.call
        proposal = call.proposal
        customer_id = proposal.customer_id
        sql = self._sql
        decision_id = one.decision_id
        states = batch.states
        # The lock: every decider for this customer (whichever of its ids it names) waits
        # here for the one before it. Taken for the whole batch already, where a row read
        # then is still as it is (no call before this one decided for that customer).
        found = batch.locked.pop(customer_id, None)
        if found is None or found[0] in batch.decided:
            found = self._identity.lock(cur, customer_id, one.id_hash)
        recorded = one.recorded
        if found is None and self._identity.erased(cur, one.id_hash):
            # Erased on request, and nothing recorded under the id since: decided as erased
            # (the lock below reads the id's suppression), and logged under the id's keyed
            # hash with the proposal's shape alone, so that asking about an erased
            # customer writes neither the id nor the message back into the ledger.
            customer_id = erased_alias(one.id_hash)
            proposal = replace(proposal, customer_id=customer_id)
            recorded = erased_record(recorded, customer_id)
            found = self._identity.lock(cur, customer_id, one.id_hash)
            if found is None:
                sql.create_customer(cur, customer_id, _wall_clock(), _first_version())
                found = self._identity.lock(cur, customer_id, one.id_hash)
                if found is None:
                    raise StoreError(f"{self.url}: the row for an erased id is not readable")
        elif found is None:
            # A new customer: a row, then its lock (a later statement, which sees an
            # erasure's suppression of the id if one committed since the check above).
            sql.create_customer(cur, customer_id, _wall_clock(), _first_version())
            found = self._identity.lock(cur, customer_id, one.id_hash)
            if found is None or found[3]:
                # Erased while we created the row: run again, and the id is logged as
                # erased (above) instead.
                raise StartOver(f"customer {customer_id!r} was erased meanwhile")
        if found[4] is not None:
            # Merged into another customer while we waited for the lock. Locking that row
            # while holding this one breaks the lock order (a merge takes them the other
            # way round): run again, and the id resolves to it.
            raise StartOver(f"customer {customer_id!r} was merged meanwhile")
        canonical, profile, version, suppressed, _, token = found
        batch.decided.add(canonical)
        if canonical != customer_id:
            # Decided, held and logged as the canonical customer's; the audit log keeps the
            # id the sender named in the proposal.
            customer_id = canonical
            proposal = replace(proposal, customer_id=canonical)
        known = states.get(customer_id)
        state = known[1] if known is not None and known[0] == version else None
        if state is None:
            state = self.states.get(customer_id, version)
        if state is None:
            state = self._state(cur, customer_id, sql.spelling.json_out(profile))
            states[customer_id] = (version, state)
        # The engine only reads the state (what it memoises is shared by copies anyway), so
        # it gets the cached one; a new hold goes on a copy (below), which keeps the cached
        # state at its version until the commit. Copying for every decision cost more than
        # the engine for customers with a long history.
        run = (
            call.if_suppressed if suppressed and call.if_suppressed is not None else call.decide_fn
        )
        decision = run(state, proposal, call.now).with_id(decision_id)
        to_hash = one.to_hash
        if call.address_check is not None and (
            to_hash is not None or state.profile.phones or state.profile.emails
        ):
            held = (state.profile.phones, state.profile.emails)
            hits = self._identity.hits(cur, customer_id, to_hash, token, held)
            if hits:
                checked = call.address_check(decision, proposal, hits)
                decision = checked.with_id(decision_id)
        values = sql.decision_values(
            decision_id,
            decision,
            customer_id,
            (proposal.channel, proposal.purpose, proposal.source, proposal.campaign),
            proposal.idempotency_key,
            recorded,
            call.now,
        )
        contact = None
        if call.hold and decision.verdict is Verdict.ALLOW:
            contact = Contact.from_proposal(
                decision_id,
                proposal,
                decision.at,
                status=ContactStatus.HELD,
                hold_expires=call.now + timedelta(seconds=call.hold_ttl_seconds),
            )
        if not sql.record(cur, values, contact, customer_id):
            # The idempotency key was used before (perhaps for another customer, even while
            # we waited for the lock, or earlier in this transaction): answer what was
            # answered then.
            assert proposal.idempotency_key is not None
            stored = sql.stored_decision(cur, proposal.idempotency_key)
            if stored is None:
                raise StoreError(f"{self.url}: idempotency key taken but not readable")
            return stored, True
        if call.also is not None:
            call.also(cur, decision)
        if contact is not None:
            # The state with the hold is the customer's next version (kept on commit).
            work = state.copy()
            work.add_contact(contact)
            states[customer_id] = (version + 1, work)
        return decision, False

    def _locked_contact(self, conn: Connection, decision_id: str) -> Contact:
        """The contact, with its customer's row locked first (the lock order: a merge
        moving the contact holds that row and then writes the contact)."""
        where = contacts.c.contact_id == decision_id
        owner = conn.execute(select(contacts.c.customer_id).where(where)).scalar()
        if owner is not None:
            self._lock_canonical(conn, [owner])
        row = conn.execute(select(contacts).where(where).with_for_update(key_share=True)).first()
        if row is not None:
            if row.customer_id != owner:
                raise StartOver(f"contact {decision_id!r} moved to another customer meanwhile")
            return _contact_of(row)
        verdict = conn.execute(
            select(decisions.c.verdict).where(decisions.c.decision_id == decision_id)
        ).scalar()
        if verdict is not None:
            raise Conflict(f"decision {decision_id!r} ({verdict}) placed no hold to act on")
        raise NotFound(f"no contact or hold with id {decision_id!r}")

    def _update_contact(self, conn: Connection, contact: Contact, **changes: Any) -> Contact:
        conn.execute(
            update(contacts)
            .where(contacts.c.contact_id == contact.contact_id)
            .values(
                {k: (v.value if isinstance(v, ContactStatus) else v) for k, v in changes.items()}
            )
        )
        self._touch_customers(conn, [contact.customer_id])  # locked already: a version bump
        return replace(contact, **changes)

    def mark_sent(self, decision_id: str, *, at: datetime | None, now: datetime) -> Contact:
        return self._write(lambda conn: self._mark_sent(conn, decision_id, at))

    def _mark_sent(self, conn: Connection, decision_id: str, at: datetime | None) -> Contact:
        contact = self._locked_contact(conn, decision_id)
        if contact.status is ContactStatus.CANCELLED:
            raise Conflict(f"contact {decision_id!r} was cancelled; it cannot be sent")
        changes: dict[str, Any] = {}
        if contact.status is not ContactStatus.SENT or contact.hold_expires is not None:
            # Even a hold that expired: the contact was made, and the ledger says so.
            changes.update(status=ContactStatus.SENT, hold_expires=None)
        if at is not None and utc(at) != contact.at:
            changes["at"] = utc(at)
        if not changes:
            return contact
        return self._update_contact(conn, contact, **changes)

    def cancel(self, decision_id: str, *, now: datetime) -> Contact:
        return self._write(lambda conn: self._cancel(conn, decision_id))

    def _cancel(self, conn: Connection, decision_id: str) -> Contact:
        contact = self._locked_contact(conn, decision_id)
        if contact.status is ContactStatus.SENT:
            raise Conflict(f"contact {decision_id!r} was already sent; it cannot be cancelled")
        if contact.status is ContactStatus.CANCELLED:
            return contact
        return self._update_contact(conn, contact, status=ContactStatus.CANCELLED)

    def record_outcome(self, decision_id: str, outcome: str, *, now: datetime) -> Contact:
        value = Outcome(outcome).value
        return self._write(lambda conn: self._record_outcome(conn, decision_id, value))

    def _record_outcome(self, conn: Connection, decision_id: str, value: str) -> Contact:
        contact = self._locked_contact(conn, decision_id)
        if contact.status is ContactStatus.CANCELLED:
            raise Conflict(f"contact {decision_id!r} was cancelled; it has no outcome")
        changes: dict[str, Any] = {"outcome": value}
        if contact.status is ContactStatus.HELD:
            changes.update(status=ContactStatus.SENT, hold_expires=None)
        return self._update_contact(conn, contact, **changes)

    def add_contacts(self, contacts_: Iterable[Contact]) -> int:
        by_id = {c.contact_id: _contact_values(c) for c in contacts_}
        if not by_id:
            return 0
        ids = list(by_id)

        def work(conn: Connection) -> None:
            rows = [dict(r) for r in by_id.values()]  # each attempt resolves the ids afresh
            self._resolve_rows(conn, rows)
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(delete(contacts).where(contacts.c.contact_id.in_(chunk)))
            conn.execute(insert(contacts), rows)

        self._write(work)
        return len(by_id)

    def get_decision(self, decision_id: str, *, now: datetime | None = None) -> DecisionRecord:
        query = (
            select(*_AUDIT_COLUMNS)
            .select_from(_AUDIT_FROM)
            .where(decisions.c.decision_id == decision_id)
        )
        with self._transaction(write=False) as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no decision with id {decision_id!r}")
        return _record_of(row, now or _wall_clock())

    def audit(self, query: AuditQuery) -> list[DecisionRecord]:
        if query.customer_id is not None:
            with self._transaction(write=False) as conn:
                canonical = identity.resolve(conn, [query.customer_id])[query.customer_id]
            query = replace(query, customer_id=canonical)
        d = decisions.c
        stmt = select(*_AUDIT_COLUMNS).select_from(_AUDIT_FROM)
        for column, value in (
            (d.customer_id, query.customer_id),
            (d.channel, query.channel),
            (d.purpose, query.purpose),
            (d.verdict, query.verdict),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if query.rule is not None:
            stmt = stmt.where(d.rules.like(f"%,{_like_escape(query.rule)},%", escape="\\"))
        if query.since is not None:
            stmt = stmt.where(d.decided_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(d.decided_at < query.until)
        if query.before is not None:
            at, decision_id = query.before
            stmt = stmt.where(
                or_(d.decided_at < at, and_(d.decided_at == at, d.decision_id < decision_id))
            )
        stmt = stmt.order_by(d.decided_at.desc(), d.decision_id.desc()).limit(max(0, query.limit))
        with self._transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
        now = _wall_clock()
        return [_record_of(r, now) for r in rows]

    # -- policies --------------------------------------------------------------------------

    @retried
    def save_policy(
        self, name: str, version: str, text: str, *, author: str | None, now: datetime
    ) -> PolicyVersion:
        with self._transaction(write=True) as conn:
            # Lock one row so that concurrent saves queue instead of racing for "active".
            conn.execute(select(settings.c.key).where(settings.c.key == "secret").with_for_update())
            active = conn.execute(select(policies).where(policies.c.active)).first()
            if active is not None and (active.name, active.version, active.text) == (
                name,
                version,
                text,
            ):
                return _policy_of(active)  # saving what is already active changes nothing
            conn.execute(update(policies).where(policies.c.active).values(active=False))
            values = {
                "name": name,
                "version": version,
                "text": text,
                "author": author,
                "created_at": now,
                "active": True,
            }
            conn.execute(insert(policies).values(values))
        return PolicyVersion(name, version, text, author, utc(now), True)

    def active_policy(self) -> PolicyVersion | None:
        with self._transaction(write=False) as conn:
            row = conn.execute(select(policies).where(policies.c.active)).first()
        return None if row is None else _policy_of(row)

    def policy_history(self, limit: int = 50) -> list[PolicyVersion]:
        stmt = (
            select(policies)
            .order_by(policies.c.created_at.desc(), policies.c.id.desc())
            .limit(max(0, limit))
        )
        with self._transaction(write=False) as conn:
            return [_policy_of(r) for r in conn.execute(stmt)]

    # -- API keys --------------------------------------------------------------------------

    def create_key(
        self, scopes: Iterable[str], *, name: str | None, now: datetime
    ) -> tuple[ApiKey, str]:
        secret = "tk_" + secrets.token_urlsafe(32)
        key = ApiKey(
            key_id=secrets.token_hex(8),
            name=name,
            scopes=frozenset(scopes),
            created_at=utc(now),
        )
        self._write(
            lambda conn: conn.execute(
                insert(api_keys).values(
                    key_id=key.key_id,
                    name=name,
                    scopes=sorted(key.scopes),
                    secret_hash=_secret_hash(secret),
                    created_at=now,
                    revoked=False,
                )
            )
        )
        return key, secret

    def check_key(self, secret: str) -> ApiKey | None:
        digest = _secret_hash(secret)
        with self._keys_lock:
            cached = self._keys.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self._transaction(write=False) as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.secret_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, digest) or row.revoked:
            return None
        key = _key_of(row)
        if self._key_cache_seconds > 0:
            with self._keys_lock:
                if len(self._keys) >= KEY_CACHE_SIZE:
                    self._keys.clear()
                self._keys[digest] = (time.monotonic() + self._key_cache_seconds, key)
        return key

    @retried
    def revoke_key(self, key_id: str) -> None:
        with self._transaction(write=True) as conn:
            result = conn.execute(
                update(api_keys).where(api_keys.c.key_id == key_id).values(revoked=True)
            )
            if result.rowcount == 0:
                raise NotFound(f"no API key with id {key_id!r}")
        with self._keys_lock:
            for digest in [d for d, (_, k) in self._keys.items() if k.key_id == key_id]:
                del self._keys[digest]

    def list_keys(self) -> list[ApiKey]:
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self._transaction(write=False) as conn:
            return [_key_of(r) for r in conn.execute(stmt)]


# The delivery tables join `metadata` (and `add_events` marks reminders) from their module;
# identity (merges, suppression by address) and checks (`load_states`) work on the tables
# above.
from tactful.store import checks, delivery, identity  # noqa: E402
