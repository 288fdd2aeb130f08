"""Fold a customer's events and contacts into what the rules need.

`CustomerState` is built from the ledger (in any arrival order, duplicates allowed) and
answers the questions rules ask: is there an opt-out, a snooze, an open checkout, how
many matching contacts in a window, what is the pressure at time t. Everything is by
event time. Derived facts are computed lazily and cached until the next change.
Times inside are float epoch seconds.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from tactful.durations import parse_datetime, parse_duration
from tactful.model import (
    ACTIVITY_EVENTS,
    ENGAGED_OUTCOMES,
    ENGAGEMENT_EVENTS,
    REQUESTED_TRIGGERS,
    UNANSWERED_OUTCOMES,
    Contact,
    ContactProposal,
    ContactStatus,
    CustomerProfile,
    Event,
    EventKind,
)

#: A session ends after this long without activity (the analytics convention).
SESSION_TIMEOUT = 30 * 60.0
#: Memo key of the sorted distinct expiry instants of the holds (see `hold_epoch`).
_HOLD_EXPIRIES = ("hold-expiries",)
_MISSING: Any = object()

_T = TypeVar("_T")


@dataclass(slots=True)
class LedgerContact:
    """A contact as the rules see it: flat fields, epoch-second times."""

    contact_id: str
    ts: float
    channel: str
    purpose: str
    status: ContactStatus
    outcome: str | None
    hold_expires: float | None
    trigger_event: str | None
    trigger_ts: float | None
    offer: str | None
    campaign: str | None
    source: str | None
    flags: tuple[str, ...]
    tags: Mapping[str, str]

    @property
    def requested(self) -> bool:
        """The customer asked for this contact (a call-back, a help request)."""
        return self.trigger_event in REQUESTED_TRIGGERS

    @property
    def unanswered(self) -> bool:
        return self.outcome in UNANSWERED_OUTCOMES

    def counts_at(self, t: float) -> bool:
        """Whether this contact occupies a slot at time t (unexpired hold or sent)."""
        if self.status is ContactStatus.SENT:
            return True
        if self.status is ContactStatus.HELD:
            return self.hold_expires is None or self.hold_expires > t
        return False

    @classmethod
    def of(cls, c: Contact) -> LedgerContact:
        return cls(
            contact_id=c.contact_id,
            ts=c.at.timestamp(),
            channel=c.channel,
            purpose=c.purpose,
            status=ContactStatus(c.status),
            outcome=c.outcome,
            hold_expires=c.hold_expires.timestamp() if c.hold_expires else None,
            trigger_event=c.trigger_event,
            trigger_ts=c.trigger_at.timestamp() if c.trigger_at else None,
            offer=c.offer,
            campaign=c.campaign,
            source=c.source,
            flags=tuple(c.flags),
            tags=c.tags,
        )

    @classmethod
    def sent(
        cls, contact_id: str, proposal: ContactProposal, ts: float, outcome: str | None
    ) -> LedgerContact:
        """`of(Contact.from_proposal(contact_id, proposal, at, outcome=outcome))`, `ts`
        being `at.timestamp()`, without the `Contact` (a replay adds one per allowed
        contact)."""
        trigger = proposal.trigger
        content = proposal.content
        # By position, in field order: half the cost of naming them (a replay makes one
        # per allowed contact; the tests hold it equal to `of`).
        return cls(
            contact_id,
            ts,
            proposal.channel,
            proposal.purpose,
            ContactStatus.SENT,
            outcome,
            None,  # hold_expires
            trigger.event if trigger else None,
            trigger.at.timestamp() if trigger and trigger.at else None,
            proposal.offer,
            proposal.campaign,
            proposal.source,
            tuple(content.flags) if content else (),
            proposal.tags,
        )


@dataclass(slots=True)
class LedgerEvent:
    ts: float
    kind: str
    event_id: str | None
    properties: Mapping[str, Any]


@dataclass(slots=True)
class Session:
    """One visit: events grouped by `session_id`, or by a 30-minute inactivity gap."""

    key: str
    start: float
    last: float
    ended: float | None = None
    engaged_at: float | None = None  # first help request or download in the session
    chat_dismissed_at: float | None = None
    checkout_started_at: float | None = None

    def active_at(self, t: float) -> bool:
        if t < self.start:
            return False
        if self.ended is not None and self.ended <= t:
            return False
        return t - self.last <= SESSION_TIMEOUT

    @property
    def duration(self) -> float:
        return (self.ended if self.ended is not None else self.last) - self.start


@dataclass(slots=True)
class Scope:
    """An opt-out or unsubscribe scope; None means every channel or every purpose."""

    channel: str | None
    purpose: str | None

    def covers(self, channel: str, purpose: str) -> bool:
        return (self.channel is None or self.channel == channel) and (
            self.purpose is None or self.purpose == purpose
        )


@dataclass(slots=True)
class Derived:
    """Facts derived from events; rebuilt whenever an event is added."""

    #: Active opt-outs: scope -> (time it took effect, the event kind that set it).
    optouts: dict[tuple[str | None, str | None], tuple[float, str]] = field(default_factory=dict)
    declines: list[tuple[float, str | None]] = field(default_factory=list)
    snooze: tuple[float, float] | None = None  # (requested at, until)
    callback: tuple[float, float, str | None] | None = None  # (requested at, for, channel)
    sessions: list[Session] = field(default_factory=list)
    activity: list[float] = field(default_factory=list)
    checkouts: list[float] = field(default_factory=list)
    orders: list[float] = field(default_factory=list)
    engagements: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    #: Where the fold stands, so a later event can be folded in without starting over:
    #: sessions by key, and the visit the last activity belonged to.
    session_keys: dict[str, Session] = field(default_factory=dict)
    current: Session | None = None

    def clone(self) -> Derived:
        """A copy that can be folded on without touching this one (sessions included)."""
        fresh = {id(s): _copy_session(s) for s in self.session_keys.values()}
        return Derived(
            optouts=dict(self.optouts),
            declines=list(self.declines),
            snooze=self.snooze,
            callback=self.callback,
            sessions=[fresh[id(s)] for s in self.sessions],
            activity=list(self.activity),
            checkouts=list(self.checkouts),
            orders=list(self.orders),
            engagements=list(self.engagements),
            by_kind={k: list(v) for k, v in self.by_kind.items()},
            session_keys={k: fresh[id(s)] for k, s in self.session_keys.items()},
            current=None if self.current is None else fresh[id(self.current)],
        )


def _copy_session(s: Session) -> Session:
    return Session(
        s.key, s.start, s.last, s.ended, s.engaged_at, s.chat_dismissed_at, s.checkout_started_at
    )


# Event kinds `_fold` tells apart, as module names: it runs once per event, and looking
# up an enum member costs more than comparing with it.
_SESSION_STARTED = EventKind.SESSION_STARTED
_SESSION_ENDED = EventKind.SESSION_ENDED
_CHECKOUT_STARTED = EventKind.CHECKOUT_STARTED
_ORDER_COMPLETED = EventKind.ORDER_COMPLETED
_COMPLAINED = EventKind.COMPLAINED
_OPTED_OUT = EventKind.OPTED_OUT
_SNOOZE_REQUESTED = EventKind.SNOOZE_REQUESTED
_CALLBACK_REQUESTED = EventKind.CALLBACK_REQUESTED
_CHAT_DISMISSED = EventKind.CHAT_DISMISSED
_SUPPRESSIONS = frozenset({EventKind.OPTED_OUT, EventKind.UNSUBSCRIBED, EventKind.COMPLAINED})
_RESUBSCRIPTIONS = frozenset({EventKind.OPTED_IN, EventKind.SUBSCRIBED})
_DECLINE_KINDS = frozenset({EventKind.OFFER_DECLINED, EventKind.NOT_INTERESTED})
_SESSION_ENGAGEMENTS = frozenset({EventKind.HELP_REQUESTED, EventKind.CONTENT_DOWNLOADED})
#: Kinds that change what `CustomerState.signal_memo` holds facts about: the opt-outs.
SIGNAL_KINDS = _SUPPRESSIONS | _RESUBSCRIPTIONS
#: Kinds `_fold` notes more of than their time and the visit they belong to.
_NOTABLE = (
    ENGAGEMENT_EVENTS
    | _SUPPRESSIONS
    | _RESUBSCRIPTIONS
    | _DECLINE_KINDS
    | {_CHECKOUT_STARTED, _ORDER_COMPLETED, _SNOOZE_REQUESTED, _CALLBACK_REQUESTED}
)

#: Tie-break for events at the same instant: a visit starts before, and ends after, what
#: happens in it; a suppression (opt-out, unsubscribe, complaint) wins over a re-subscribe.
_TIE_RANK: dict[str, int] = {
    EventKind.SESSION_STARTED: 0,
    EventKind.OPTED_OUT: 2,
    EventKind.UNSUBSCRIBED: 2,
    EventKind.COMPLAINED: 2,
    EventKind.SESSION_ENDED: 3,
}


def _event_order(e: LedgerEvent) -> tuple[float, int, str, str, str]:
    """Sort key of the ledger: event time, then a fixed order for events at the same instant."""
    return (
        e.ts,
        _TIE_RANK.get(e.kind, 1),
        e.kind,
        e.event_id or "",
        json.dumps(e.properties, sort_keys=True, default=str),
    )


def _event_time(e: LedgerEvent) -> float:
    return e.ts


def _scope_of(props: Mapping[str, Any]) -> tuple[str | None, str | None]:
    channel = props.get("channel")
    purpose = props.get("purpose")
    return (str(channel) if channel else None, str(purpose) if purpose else None)


def _snooze_until(ts: float, props: Mapping[str, Any]) -> float | None:
    if props.get("until"):
        return parse_datetime(props["until"]).timestamp()
    if props.get("duration"):
        return ts + parse_duration(str(props["duration"]))
    return None


class CustomerState:
    """Everything known about one customer, folded for fast rule evaluation.

    Facts the rules derive (`cached`) are memoised in one dict until the state changes;
    facts derived from the contacts alone (`matching`, `contact_fact`) in another, kept
    when an event arrives; facts derived from the profile and the opt-outs alone in a
    third (`signal_fact`), kept when a contact or any other kind of event arrives. A `copy`
    shares them with its original while both are unchanged, so a store that decides on
    copies of a cached state keeps the facts warm; any change gives the changed state
    fresh dicts and never clears one it may share.
    """

    def __init__(
        self,
        profile: CustomerProfile,
        events: Iterable[Event] = (),
        contacts: Iterable[Contact] = (),
    ) -> None:
        self._profile = profile
        self.events: list[LedgerEvent] = []
        self.contacts: list[LedgerContact] = []
        self._event_ids: set[str] = set()
        self._derived: Derived | None = None
        #: Whether `_derived` may be shared with a copy (then it is cloned before a change).
        self._derived_shared = False
        #: Facts the rules derive from this state, keyed by whatever identifies them (a
        #: rule's token, a hold epoch, ...): valid until the state changes, when it is
        #: replaced by a fresh dict. Read it with `.get`; write through `cached` or by key,
        #: never clear it (a copy may share it).
        self.memo: dict[Hashable, Any] = {}
        #: Facts derived from the contacts alone (and the profile): the same rules as
        #: `memo`, but replaced only when a contact or the profile changes (see
        #: `contact_fact`), so a replay's events between two decisions keep them.
        self.contact_memo: dict[Hashable, Any] = {}
        #: Facts derived from the profile and the customer's opt-outs and
        #: re-subscriptions alone (`signal_fact`): the same rules as `memo`, but replaced
        #: only when such an event arrives (`SIGNAL_KINDS`) or the profile changes, so
        #: contacts, page views and visits between two decisions keep them.
        self.signal_memo: dict[Hashable, Any] = {}
        #: Facts of former contact memos, each with how many contacts it was about, while
        #: every contact added since was appended: sent, and later than all before it
        #: (see `contact_fact`). Replaced, never changed (a copy may share it).
        self._prefix: dict[Hashable, tuple[Any, int]] = {}
        #: Whether the state changes after nearly every decision made on it (a replay's
        #: simulated customer): the engine then memoises nothing per decision kind (see
        #: `tactful.engine.steps`). Decisions are the same either way.
        self.transient = False
        for e in events:
            self.add_event(e)
        for c in contacts:
            self.add_contact(c)

    # -- changes -------------------------------------------------------------------------

    @property
    def profile(self) -> CustomerProfile:
        return self._profile

    @profile.setter
    def profile(self, profile: CustomerProfile) -> None:
        # Zones, regions and consent are memoised from the profile.
        self._profile = profile
        self.memo = {}
        self.contact_memo = {}
        self.signal_memo = {}
        self._prefix = {}

    @property
    def _cache(self) -> dict[Hashable, Any]:
        """The former name of `memo`, for callers that still clear it (that is safe: a
        shared memo only loses facts, which are rebuilt)."""
        return self.memo

    def add_event(self, event: Event) -> bool:
        """Add an event in event-time order; returns False for a duplicate event id."""
        return self.add_ledger_event(
            LedgerEvent(event.at.timestamp(), event.kind, event.event_id, event.properties)
        )

    def add_ledger_event(self, le: LedgerEvent) -> bool:
        """`add_event` for an event already in the ledger's form (the replay reads its
        times as epoch seconds, and need not build an `Event` for each)."""
        if le.event_id is not None:
            if le.event_id in self._event_ids:
                return False
            self._event_ids.add(le.event_id)
        if not self.events or self.events[-1].ts < le.ts:
            self.events.append(le)
            self._fold_last(le)
            if le.kind in SIGNAL_KINDS:
                self.signal_memo = {}
        else:
            # Events at the same instant fold in a fixed order, not in arrival order; an
            # event before others changes what follows it: fold again when asked.
            bisect.insort_right(self.events, le, key=_event_order)
            self._derived = None
            self.signal_memo = {}
        self.memo = {}
        return True

    def add_contact(self, contact: Contact) -> None:
        """Add a contact, or replace the one with the same id (status or outcome changed)."""
        self.add_ledger_contact(LedgerContact.of(contact))

    def add_ledger_contact(self, lc: LedgerContact, *, new: bool = False) -> None:
        """`add_contact` for a contact already in the ledger's form. `new`: the caller
        knows no contact in the ledger has its id (a replay's, one per log row), so none is
        looked for to replace."""
        engaged = lc.outcome in ENGAGED_OUTCOMES
        replaced = False
        if not new:
            for i, existing in enumerate(self.contacts):
                if existing.contact_id == lc.contact_id:
                    replaced = True
                    engaged = engaged or existing.outcome in ENGAGED_OUTCOMES
                    del self.contacts[i]
                    break
        if engaged:
            # Answered or replied contacts are engagement, which `derived` folds in.
            d = None if replaced else self._own_derived()
            if d is None:
                self._derived = None
            else:
                bisect.insort(d.engagements, lc.ts)
        if not self.contacts or self.contacts[-1].ts < lc.ts:
            if replaced or lc.status is not ContactStatus.SENT:
                self._prefix = {}
            elif self.contact_memo:
                # Facts about the ledger so far stay true of its first contacts.
                n = len(self.contacts)
                self._prefix = {**self._prefix, **{k: (v, n) for k, v in self.contact_memo.items()}}
            self.contacts.append(lc)
        else:
            bisect.insort_right(self.contacts, lc, key=lambda x: (x.ts, x.contact_id))
            self._prefix = {}
        self.memo = {}
        self.contact_memo = {}

    def contact(self, contact_id: str) -> LedgerContact | None:
        for c in self.contacts:
            if c.contact_id == contact_id:
                return c
        return None

    def copy(self) -> CustomerState:
        """A shallow copy that can take new events and contacts without touching this one
        (the two share derived facts until either changes)."""
        other = CustomerState.__new__(CustomerState)
        other._profile = self._profile
        other.events = list(self.events)
        other.contacts = list(self.contacts)
        other._event_ids = set(self._event_ids)
        other._derived = self._derived
        other._derived_shared = self._derived_shared = True
        other.memo = self.memo
        other.contact_memo = self.contact_memo
        other.signal_memo = self.signal_memo
        other._prefix = self._prefix
        other.transient = self.transient
        return other

    def __getstate__(self) -> dict[str, Any]:
        # A pickled state (for another process) leaves its memo behind: it holds markers
        # compared by identity, and every fact in it is rebuilt on demand.
        fields = self.__dict__.copy()
        fields["memo"] = {}
        fields["contact_memo"] = {}
        fields["signal_memo"] = {}
        fields["_prefix"] = {}
        return fields

    def forget(self) -> None:
        """Drop every memoised fact (they are rebuilt on demand): for tests and benchmarks
        that compare a warm state with a cold one."""
        self._derived = None
        self._derived_shared = False
        self.memo = {}
        self.contact_memo = {}
        self.signal_memo = {}
        self._prefix = {}

    # -- derived facts -------------------------------------------------------------------

    @property
    def derived(self) -> Derived:
        if self._derived is None:
            self._derived = self._derive()
            self._derived_shared = False
        return self._derived

    def _derive(self) -> Derived:
        d = Derived()
        for e in self.events:
            self._fold(d, e)
        d.sessions = sorted(d.session_keys.values(), key=lambda s: s.start)
        # Contacts that got an answer or a reply are engagement too.
        for c in self.contacts:
            if c.outcome in ENGAGED_OUTCOMES:
                bisect.insort(d.engagements, c.ts)
        return d

    def _own_derived(self) -> Derived | None:
        """The derived facts, ready to be folded on (a copy if another state shares them),
        or None when they are not built yet."""
        d = self._derived
        if d is not None and self._derived_shared:
            d = self._derived = d.clone()
            self._derived_shared = False
        return d

    def _fold_last(self, e: LedgerEvent) -> None:
        """Fold `e`, later than every other event, into the derived facts if they are
        built: the same facts a full fold gives, in time proportional to one event."""
        d = self._own_derived()
        if d is None:
            return
        sessions = len(d.session_keys)
        self._fold(d, e)
        if len(d.session_keys) != sessions:
            # A new visit starts at `e`, after every other one began.
            d.sessions.append(next(reversed(d.session_keys.values())))

    @classmethod
    def _fold(cls, d: Derived, e: LedgerEvent) -> None:
        """Fold one event into `d`; events must come in ledger order."""
        kind, ts, props = e.kind, e.ts, e.properties
        times = d.by_kind.get(kind)
        if times is None:
            d.by_kind[kind] = [ts]
        else:
            times.append(ts)
        if kind in ACTIVITY_EVENTS:
            d.current = cls._sessionize(d.session_keys, d.current, e)
            d.activity.append(ts)
        elif kind == _SESSION_ENDED:
            d.current = cls._sessionize(d.session_keys, d.current, e)
        if kind not in _NOTABLE:
            return  # page views and the like: nothing more to note
        if kind in ENGAGEMENT_EVENTS:
            # Engaged contacts are in the list too, possibly later than this event.
            bisect.insort(d.engagements, ts)
        if kind == _CHECKOUT_STARTED:
            d.checkouts.append(ts)
        elif kind == _ORDER_COMPLETED:
            d.orders.append(ts)
        elif kind in _SUPPRESSIONS:
            scope = _scope_of(props)
            if kind == _COMPLAINED and scope == (None, None):
                # A spam complaint stops marketing on the channel it came from.
                scope = (scope[0] or "email", "marketing")
            if kind == _OPTED_OUT:
                scope = (None, None) if not props.get("channel") else scope
            d.optouts[scope] = (ts, kind)
        elif kind in _RESUBSCRIPTIONS:
            scope = _scope_of(props)
            if scope == (None, None):
                # Opting in again, without naming a scope, lifts every earlier opt-out.
                d.optouts.clear()
            else:
                d.optouts.pop(scope, None)
        elif kind in _DECLINE_KINDS:
            offer = props.get("offer")
            d.declines.append((ts, str(offer) if offer else None))
        elif kind == _SNOOZE_REQUESTED:
            until = _snooze_until(ts, props)
            d.snooze = (ts, until) if until is not None else None
        elif kind == _CALLBACK_REQUESTED:
            when = props.get("at") or props.get("callback_at")
            if when:
                channel = props.get("channel")
                d.callback = (
                    ts,
                    parse_datetime(when).timestamp(),
                    str(channel) if channel else None,
                )
            elif props.get("cancelled"):
                d.callback = None

    @staticmethod
    def _sessionize(
        by_key: dict[str, Session], current: Session | None, e: LedgerEvent
    ) -> Session | None:
        sid = e.properties.get("session_id")
        key: str | None = None
        if sid is not None:
            key = f"id:{sid}"
            session = by_key.get(key)
        else:
            session = current
            if session is not None and (
                session.ended is not None or e.ts - session.last > SESSION_TIMEOUT
            ):
                session = None
        kind = e.kind
        if kind == _SESSION_ENDED:
            if session is not None:
                session.ended = e.ts
                session.last = max(session.last, e.ts)
            return session
        if session is None or (kind == _SESSION_STARTED and sid is None):
            if key is None:
                key = f"gap:{e.ts}"  # formatted only for a visit that starts here
            session = Session(key=key, start=e.ts, last=e.ts)
            by_key[key] = session
        elif e.ts > session.last:
            session.last = e.ts
        if kind in _SESSION_ENGAGEMENTS:
            if session.engaged_at is None:
                session.engaged_at = e.ts
        elif kind == _CHAT_DISMISSED:
            session.chat_dismissed_at = e.ts
        elif kind == _CHECKOUT_STARTED:
            session.checkout_started_at = e.ts
        elif kind == _ORDER_COMPLETED:
            session.checkout_started_at = None
        return session

    # -- questions rules ask ---------------------------------------------------------------

    def optout_covering(self, channel: str, purpose: str) -> tuple[float, str, Scope] | None:
        """The earliest active opt-out or unsubscribe that covers this channel and purpose."""
        found: tuple[float, str, Scope] | None = None
        for (ch, pu), (ts, kind) in self.derived.optouts.items():
            scope = Scope(ch, pu)
            if scope.covers(channel, purpose) and (found is None or ts < found[0]):
                found = (ts, kind, scope)
        return found

    def session_at(self, t: float) -> Session | None:
        """The session live at t, if any."""
        for s in reversed(self.derived.sessions):
            if s.start <= t:
                return s if s.active_at(t) else None
        return None

    def sessions_over(self) -> float:
        """The first instant from which no visit is live, as the ledger stands: the last
        visit has ended or timed out (-inf with no visit at all). From then on
        `session_at` is None and `last_session_before` the last visit."""
        sessions = self.derived.sessions
        if not sessions:
            return -math.inf
        last = sessions[-1]
        # Live while t - last <= SESSION_TIMEOUT: the next float after that is over.
        over = math.nextafter(last.last + SESSION_TIMEOUT, math.inf)
        if last.ended is not None:
            over = min(over, last.ended)
        return max(over, last.start)

    def last_session_before(self, t: float) -> Session | None:
        for s in reversed(self.derived.sessions):
            if s.start <= t:
                return s
        return None

    def last_before(self, times: list[float], t: float) -> float | None:
        i = bisect.bisect_right(times, t)
        return times[i - 1] if i else None

    def last_activity(self, t: float) -> float | None:
        return self.last_before(self.derived.activity, t)

    def last_event(self, kind: str, t: float) -> float | None:
        times = self.derived.by_kind.get(kind)
        return self.last_before(times, t) if times else None

    def first_event_after(self, kind: str, t: float) -> float | None:
        times = self.derived.by_kind.get(kind)
        if not times:
            return None
        i = bisect.bisect_right(times, t)
        return times[i] if i < len(times) else None

    def next_event_after(self, t: float) -> float:
        """The time of the first event after `t` (inf: none)."""
        events = self.events
        i = bisect.bisect_right(events, t, key=_event_time)
        return events[i].ts if i < len(events) else math.inf

    def last_engagement(self, t: float) -> float | None:
        return self.last_before(self.derived.engagements, t)

    def hold_epoch(self, now: float) -> int:
        """Which of the holds have expired at `now`, as a number: the count of distinct
        expiry instants at or before it. Whether each contact counts at `now`
        (`LedgerContact.counts_at`) depends on `now` only through this number, so facts
        built from the contacts that count can be memoised per epoch rather than per
        instant: they stay valid while `now` moves, until the next hold expires."""
        expiries: list[float] | None = self.contact_memo.get(_HOLD_EXPIRIES)
        if expiries is None:
            expiries = self._hold_expiries()
        return bisect.bisect_right(expiries, now) if expiries else 0

    def next_visit_change(self, t: float) -> float:
        """The first instant after `t` at which what `session_at` says may change: the next
        event, or the timeout of the visit live at t (a microsecond early: `active_at`
        compares a rounded difference)."""
        s = self.next_event_after(t)
        live = self.session_at(t)
        if live is not None:
            s = min(s, live.last + SESSION_TIMEOUT - 1e-6)
        return s

    def next_hold_expiry(self, now: float) -> float:
        """The first instant after `now` at which the hold epoch changes (inf: none)."""
        expiries: list[float] | None = self.contact_memo.get(_HOLD_EXPIRIES)
        if expiries is None:
            expiries = self._hold_expiries()
        i = bisect.bisect_right(expiries, now)
        return expiries[i] if i < len(expiries) else math.inf

    def _hold_expiries(self) -> list[float]:
        return self.contact_fact(
            _HOLD_EXPIRIES,
            lambda contacts: sorted(
                {
                    c.hold_expires
                    for c in contacts
                    if c.status is ContactStatus.HELD and c.hold_expires is not None
                }
            ),
            # An appended contact is sent: it adds no expiry, so every epoch keeps its
            # meaning and facts memoised per epoch can be extended too.
            lambda expiries, added: expiries,
        )

    def contact_fact(
        self,
        key: Hashable,
        build: Callable[[Sequence[LedgerContact]], _T],
        extend: Callable[[_T, Sequence[LedgerContact]], _T] | None = None,
    ) -> _T:
        """A fact derived from the contacts alone (and at most the profile and a hold
        epoch, named in `key`), memoised under `key` until a contact or the profile
        changes: `build(contacts)`, the contacts in ledger order. When contacts were only
        appended since the fact was last built (each sent, and later than all before it,
        as in a replay), `extend(fact, appended)` brings it up to date instead and must
        give what `build` would. Neither may change a fact once returned: an earlier
        state or a copy may still hold it."""
        hit = self.contact_memo.get(key, _MISSING)
        if hit is _MISSING:
            before = self._prefix.get(key) if extend is not None else None
            if extend is not None and before is not None:
                hit = extend(before[0], self.contacts[before[1] :])
            else:
                hit = build(self.contacts)
            self.contact_memo[key] = hit
        fact: _T = hit
        return fact

    def matching(
        self, key: Hashable, predicate: Callable[[LedgerContact], bool]
    ) -> list[LedgerContact]:
        """Contacts (any status) for which `predicate` holds, cached under `key` (see
        `contact_fact`: the predicate looks at the contact alone)."""
        hit: list[LedgerContact] | None = self.contact_memo.get(key)
        if hit is not None:
            return hit
        return self.contact_fact(
            key,
            lambda contacts: [c for c in contacts if predicate(c)],
            lambda found, added: found + [c for c in added if predicate(c)],
        )

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Memoise a derived value until the state next changes."""
        return _remembered(self.memo, key, compute)

    def signal_fact(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """Memoise a value derived from the profile and the opt-outs alone, in
        `signal_memo`: until the profile or the opt-outs change."""
        return _remembered(self.signal_memo, key, compute)


def _remembered(memo: dict[Hashable, Any], key: Hashable, compute: Callable[[], Any]) -> Any:
    """`memo[key]`, computed and kept there the first time it is asked for."""
    try:
        return memo[key]
    except KeyError:
        value = memo[key] = compute()
        return value


def pressure_at(
    contacts: Iterable[LedgerContact],
    t: float,
    weight: Callable[[LedgerContact], float],
    half_life: float,
) -> float:
    """Sum of each counting contact's weight, halved every `half_life` seconds since it."""
    total = 0.0
    for c in contacts:
        if c.ts <= t and c.counts_at(t):
            w = weight(c)
            if w:
                total += w * math.exp2(-(t - c.ts) / half_life)
    return total


def parse_event_time(value: str | datetime) -> datetime:
    return parse_datetime(value)
