"""Replay in machine code, for the policies `tactful.replay.kernel` covers.

`fold_frame` gives exactly the verdicts `timeline.fold_columns` gives (the same columns,
reasons worded alike, pressures to the last bit), for a timeline slice and one policy whose
rules are all of a kind the kernel restates (`KINDS`; `unsupported` says why a policy is
not). The local engine uses it for such a policy unless `TACTFUL_REPLAY_NATIVE=0`; any
other policy is folded by the engine itself, and so are the few customers the kernel
hands back.

Here the slice becomes arrays: each contact's shape (the fields a rule's scope and `per`
keys read) as a code, and per shape the rules of its plan, the customer having asked for
the contact or not. Scopes, plans and keys are worked out by the policy's own code, once per
shape. After the kernel, the reasons are worded here, by each rule's message. A replay of
a log's files numbers its shapes, contents, event kinds and outcomes once for all of its
slices (`LogCodes`), which then carry those numbers instead of the text.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pyarrow as pa

from tactful.durations import parse_datetime
from tactful.engine import _Placeholders
from tactful.jurisdiction import customer_regions, in_regions
from tactful.localtime import customer_country, customer_zones, day_start, holiday_name
from tactful.model import (
    ACTIVITY_EVENTS,
    ENGAGED_OUTCOMES,
    ENGAGEMENT_EVENTS,
    REQUESTED_TRIGGERS,
    SIGNAL_OUTCOMES,
    UNANSWERED_OUTCOMES,
    ContactProposal,
    Content,
    CustomerProfile,
    EventKind,
    Trigger,
    outcome_signal,
)
from tactful.policy.document import Policy
from tactful.replay import kernel, texts
from tactful.replay.fold import DEFAULT_HALF_LIFE, DEFAULT_UNANSWERED_FACTOR
from tactful.replay.io import (
    CUSTOMER_CODE,
    PROFILE_COLUMNS,
    TimelineBuilder,
    customer_bounds,
    tallied_codes,
)
from tactful.replay.order import TALLIED, looked_up, push_digit, renumbered
from tactful.replay.timeline import (
    COPIED_COLUMNS,
    TIMELINE_COLUMNS,
    _json_object,
    _split,
    event_properties,
    fold_columns,
)
from tactful.rules.activity import ActivityRule
from tactful.rules.base import Rule, contact_key
from tactful.rules.callback import CallbackRule
from tactful.rules.cap import CapRule
from tactful.rules.consent import ConsentRule, consent_keys
from tactful.rules.content import ContentRule
from tactful.rules.cooldown import CooldownRule, _event_key
from tactful.rules.decline import DeclineRule
from tactful.rules.frequency import FrequencyRule
from tactful.rules.gap import GapRule
from tactful.rules.holiday import HolidayRule
from tactful.rules.hours import HoursRule
from tactful.rules.preferences import PreferencesRule
from tactful.rules.pressure import PressureRule
from tactful.rules.revocation import LIFTING, RevocationRule
from tactful.rules.session import SessionRule
from tactful.rules.snooze import SnoozeRule
from tactful.rules.trigger import TriggerRule
from tactful.rules.unanswered import UnansweredRule
from tactful.state import (
    _DECLINE_KINDS,
    _RESUBSCRIPTIONS,
    _SESSION_ENGAGEMENTS,
    _SUPPRESSIONS,
    _TIE_RANK,
    LedgerContact,
    _scope_of,
    _snooze_until,
)

#: The rules the kernel checks as hours rules (`kernel.HOURS`), with tables per place.
_HOURS = (HoursRule, HolidayRule)
#: Set to 0 to fold every policy through the engine itself.
NATIVE_ENV = "TACTFUL_REPLAY_NATIVE"

KINDS: dict[type[Rule], int] = {
    CapRule: kernel.CAP,
    GapRule: kernel.GAP,
    PressureRule: kernel.PRESSURE,
    ActivityRule: kernel.ACTIVITY,
    TriggerRule: kernel.TRIGGER,
    ContentRule: kernel.CONTENT,
    ConsentRule: kernel.CONSENT,
    DeclineRule: kernel.DECLINE,
    CallbackRule: kernel.CALLBACK,
    # A replay's profile has no preferences: the rule allows every contact.
    PreferencesRule: kernel.ALLOWS,
    SnoozeRule: kernel.SNOOZE,
    UnansweredRule: kernel.UNANSWERED,
    HoursRule: kernel.HOURS,
    # Closed on the law's holidays: to the kernel, hours open all day but on those days.
    HolidayRule: kernel.HOURS,
    SessionRule: kernel.SESSION,
    RevocationRule: kernel.REVOCATION,
    FrequencyRule: kernel.FREQUENCY,
    CooldownRule: kernel.COOLDOWN,
}
#: Rules whose `per` keys the kernel reads per row (`fkey`), not per shape: these, and a
#: cap, gap or unanswered rule keyed by a tag (`_row_keyed`).
_KEYED = (FrequencyRule, CooldownRule)
#: Kinds whose `per` keys match exactly (a missing value matches only a missing one).
_EXACT = (CapRule, GapRule, UnansweredRule)


def _row_keyed(rule: Rule) -> bool:
    """Whether the kernel reads `rule`'s `per` keys per row."""
    if isinstance(rule, _KEYED):
        return True
    return isinstance(rule, _EXACT) and any(f.startswith("tags.") for f in getattr(rule, "per", ()))


_MODES = {"defer": kernel.DEFER, "deny": kernel.DENY, "flag": kernel.FLAG}
#: Each verdict's name at its code (`kernel.ALLOW`, `DEFERRED`, `DENIED`).
_NAMED = {kernel.ALLOW: "allow", kernel.DEFERRED: "defer", kernel.DENIED: "deny"}
_VERDICT_NAMES = pl.Series([_NAMED[code] for code in sorted(_NAMED)], dtype=pl.Categorical)
#: A contact's shape: what scopes, plans and `per` keys read.
SHAPE_COLUMNS = ("channel", "purpose", "source", "campaign", "trigger", "flags", "offer")
#: What a content rule reads.
CONTENT_COLUMNS = ("subject", "body", "discount")
#: What `LogCodes` adds to a log's slices: per row, its contact's shape, content (where a
#: policy has a content rule) and tags (where a frequency rule counts per tag), its
#: event's kind and its contact's outcome, as places in the log's lists of them (-1: none).
CODE_COLUMNS = ("_shape", "_content", "_tags", "_event", "_outcome")
#: The timeline columns the kernel reads (`columns_for` adds what some policies need).
COLUMNS = tuple(
    dict.fromkeys(
        (
            "customer_id",
            "at_us",
            "is_contact",
            "row",
            "event",
            "event_id",
            "outcome",
            *SHAPE_COLUMNS,
            *COPIED_COLUMNS,
        )
    )
)
_UNANSWERED = [str(o) for o in UNANSWERED_OUTCOMES]
_ENGAGED = [str(o) for o in ENGAGED_OUTCOMES]
_SIGNALS = [str(o) for o in SIGNAL_OUTCOMES]

#: Kinds whose rules never hand a customer back to the engine and read neither events'
#: properties nor their order at one instant: a policy of these alone is folded from
#: fewer columns (`columns_for`).
SELF_CONTAINED = (
    CapRule,
    GapRule,
    PressureRule,
    ActivityRule,
    ContentRule,
    UnansweredRule,
    PreferencesRule,
)


def unsupported(policy: Policy) -> list[str]:
    """Why the kernel cannot replay `policy` (nothing: it can)."""
    why = []
    if sys.version_info >= (3, 12):
        # Its sum() of floats compensates rounding; the kernel adds as 3.11 does.
        why.append("Python 3.12 and later sum floats otherwise than the kernel")
    for rule in policy.rules:
        if type(rule) not in KINDS:
            why.append(f"rule {rule.id!r}: kind {rule.kind!r}")
    if sum(isinstance(r, RevocationRule) for r in policy.rules) > kernel.LIFTS:
        why.append(f"more than {kernel.LIFTS} revocation rules")
    return why


def tagged(policies: Sequence[Policy]) -> bool:
    """Whether a rule of these counts per tag (the kernel reads the contacts' tags)."""
    return any(
        _row_keyed(r) and any(f.startswith("tags.") for f in getattr(r, "per", ()))
        for p in policies
        for r in p.rules
    )


def _calendar(rule: Rule) -> bool:
    """Whether `rule` counts the customer's local calendar days (a silence's, a
    frequency's, or those within which a request counts as consent)."""
    if isinstance(rule, CooldownRule) or (isinstance(rule, CapRule) and rule.window in _PERIODS):
        return True
    return isinstance(rule, FrequencyRule) and bool(rule.days or _consent_days(rule))


#: A cap's calendar periods, as the kernel numbers them.
_PERIODS = {"day": kernel.DAY, "week": kernel.WEEK, "month": kernel.MONTH}


def _consent_days(rule: FrequencyRule | CooldownRule) -> int:
    """The days within which a request exempts contacts from `rule` (0: no limit, or no
    exemption)."""
    return (rule.consent_days or 0) if rule.requested == "exempt" else 0


def enabled(policy: Policy) -> bool:
    """Whether the local engine replays `policy` natively."""
    return os.environ.get(NATIVE_ENV, "1") != "0" and not unsupported(policy)


def path_taken(policy: Policy) -> str:
    """How the local engine replays `policy`, in words for the replay's summary."""
    if os.environ.get(NATIVE_ENV, "1") == "0":
        return f"folded by the engine ({NATIVE_ENV}=0)"
    why = unsupported(policy)
    if not why:
        return "folded by the replay kernel"
    more = f", and {len(why) - 3} more" if len(why) > 3 else ""
    return f"folded by the engine; the replay kernel does not cover {'; '.join(why[:3])}{more}"


def columns_for(policies: Sequence[Policy], *, coded: bool = False) -> tuple[str, ...]:
    """The timeline columns `fold_frame` reads for these (native) policies; `coded`: of a
    slice with `LogCodes`' columns, which stand for those they number, and whose other
    columns the engine reads from `whole()`."""
    contained = all(self_contained(p) for p in policies)
    if coded:
        read: tuple[str, ...] = (CUSTOMER_CODE, "at_us", "is_contact", "row", "event_id")
        if not contained:
            # Profiles come per customer (`LogCodes.profiles`), not per row.
            read += ("trigger_at_us", "properties", "session_id")
        unread = set()
        if not any(isinstance(r, ContentRule) for p in policies for r in p.rules):
            unread.add("_content")
        if not tagged(policies):
            unread.add("_tags")
        return read + tuple(c for c in CODE_COLUMNS if c not in unread)
    if not contained:
        return tuple(TIMELINE_COLUMNS)  # a customer may go to the engine, which reads all
    rules = [r for p in policies for r in p.rules]
    extra = CONTENT_COLUMNS if any(isinstance(r, ContentRule) for r in rules) else ()
    return COLUMNS + extra + (("tags",) if tagged(policies) else ())


def self_contained(policy: Policy) -> bool:
    """Whether the kernel folds every customer for `policy` itself, reading neither the
    order of events at one instant nor what only the engine reads (nor the profiles: a
    rule limited to regions reads where each customer may be; a rule keyed by tags hands
    a customer whose tag is not text to the engine)."""
    return all(
        isinstance(r, SELF_CONTAINED) and not _visits(r) and not r.scope.regions
        and not _row_keyed(r)
        for r in policy.rules
    )  # fmt: skip


def _visits(rule: Rule) -> bool:
    """Whether `rule` reads the customer's visits."""
    return isinstance(rule, SessionRule) or (isinstance(rule, CapRule) and rule.window == "session")


class _Codes(dict[Any, int]):
    def code(self, value: Any) -> int:
        found = self.get(value)
        if found is None:
            found = self[value] = len(self)
        return found


def _coded(
    frame: pl.DataFrame, columns: Sequence[str], rows: pl.Expr
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Per row of `frame`, the code of its values in `columns` (-1 where `rows` is false);
    the distinct values, each at its code's place."""
    inside = frame.with_columns(rows.alias("_in")).get_column("_in").to_numpy()
    picked = np.flatnonzero(inside)
    chosen = frame.select(columns) if len(picked) == frame.height else frame.filter(inside)
    text = [c for c in columns if chosen.schema[c] == pl.String]
    if text:
        # Text (a content's subject and body) numbered as a categorical of its own, which
        # is let go with it, and then by its codes as the others are (`isinstance` in
        # `_numbered`: such a categorical is not `== pl.Categorical`, and was joined
        # back). Few values, as the policy's tables of them assume.
        chosen = chosen.with_columns(pl.col(text).cast(pl.Categorical(pl.Categories.random())))
    numbered = [_numbered(chosen.get_column(c)) for c in columns]
    if all(x is not None for x in numbered):
        # Categoricals and booleans: each row's values as digits of one number (~3x
        # quicker than joining the distinct values back).
        key = np.zeros(len(picked), dtype=np.int64)
        span = 1
        for places, used in (x for x in numbered if x is not None):
            if span * (len(used) + 1) >= TALLIED:
                dense, span = _dense(key)
                key = dense.astype(np.int64)
            push_digit(key, places, len(used) + 1)
            span *= len(used) + 1
        code, count = _dense(key)
        # Each code's values read off one of its rows (any: they hold the same values).
        first = np.empty(count, dtype=np.int64)
        first[code] = np.arange(len(picked))
        out = np.full(frame.height, -1, dtype=np.int32)
        out[picked] = code
        return out, chosen.select(columns).gather(first).to_dicts()
    # Codes too many to tally: the distinct values joined back to the rows.
    values = chosen.select(columns)
    distinct = values.unique(maintain_order=True)
    coded = values.join(
        distinct.with_row_index("_code"),
        on=list(columns),
        how="left",
        nulls_equal=True,
        maintain_order="left",
    )
    out = np.full(frame.height, -1, dtype=np.int32)
    out[picked] = coded.get_column("_code").to_numpy()
    return out, distinct.to_dicts()


def _dense(key: np.ndarray) -> tuple[np.ndarray, int]:
    """`key` renumbered 0, 1, ... in the order of its values, and how many there are."""
    if len(key) and key.max() < TALLIED:
        code, used = renumbered(key, int(key.max()) + 1)
        return code, len(used)
    uniques, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1).astype(np.int32), len(uniques)


def _numbered(column: pl.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A categorical's (or a boolean's) values as small numbers, worked out on its codes:
    per row, its value's place among the values present (nulls after them all); and per
    place, its code. None for other columns, or codes too large to tally."""
    if column.dtype == pl.Boolean:
        physical = column.cast(pl.UInt8)
    elif isinstance(column.dtype, pl.Categorical):  # any categories' (`==`: the global's)
        physical = column.to_physical()
    else:
        return None
    tallied = tallied_codes(physical)
    if tallied is None:
        return None
    codes, size, nulls = tallied
    places, used = renumbered(codes, size)
    return places, used[:-1] if nulls else used


def _proposal(values: dict[str, Any]) -> ContactProposal:
    """A proposal of this shape, its fields read as `timeline.items_of` reads them."""
    trigger = values["trigger"]
    flags = values["flags"]
    return ContactProposal(
        "",
        values["channel"],
        values["purpose"],
        trigger=Trigger(trigger, None) if trigger else None,
        offer=values["offer"],
        campaign=values["campaign"],
        source=values["source"],
        content=Content(None, None, False, _split(flags)) if flags else None,
    )


class Prepared:
    """A policy, a slice's contact shapes and event kinds, as the kernel's tables."""

    def __init__(
        self,
        policy: Policy,
        shapes: list[dict[str, Any]],
        kinds: list[str],
        contents: list[dict[str, Any]],
        tags: Sequence[str] = (),
    ) -> None:
        """`tags`: the contacts' distinct tags (JSON objects), which a rule may count by."""
        rules = list(policy.rules)
        index = {id(r): i for i, r in enumerate(rules)}
        kind_code = {k: i for i, k in enumerate(kinds)}
        n_rules, n_shapes = max(len(rules), 1), max(len(shapes), 1)
        self.rules = rules
        #: Channels, purposes and offers, as codes the kernel compares.
        self.words = _Codes()
        self.rule_kind = np.array([KINDS[type(r)] for r in rules], dtype=np.int8)
        self.timeless = np.array([r.timeless for r in rules] or [False], dtype=np.bool_)
        self.rule_f = np.zeros((n_rules, 8))
        longest = max((len(r.cancelled_by) for r in rules if isinstance(r, TriggerRule)), default=0)
        self.cancels = np.full((n_rules, max(longest, 1)), -1, dtype=np.int32)
        content_rules = [r for r in rules if isinstance(r, ContentRule)]
        self.content_index = {id(r): k for k, r in enumerate(content_rules)}
        hours_index = {id(r): h for h, r in enumerate(r for r in rules if isinstance(r, _HOURS))}
        #: The revocation rules, in policy order (a rule's bit in `revocations`).
        self.revocations = [r for r in rules if isinstance(r, RevocationRule)]
        revocation_index = {id(r): q for q, r in enumerate(self.revocations)}
        #: The rules keyed per row (`_row_keyed`), in policy order, and the rows of `fkey`:
        #: per frequency or cooldown rule one per `per` key (one at least), per cap, gap or
        #: unanswered rule one for its keys together; each row's rule and key (None: all).
        self.keyed: list[Any] = [r for r in rules if _row_keyed(r)]
        self.key_rows: list[tuple[Any, str | None]] = []
        #: Each keyed rule's first row, by `id`.
        self.key_base: dict[int, int] = {}
        for r in self.keyed:
            self.key_base[id(r)] = len(self.key_rows)
            fields = [None] if isinstance(r, _EXACT) or not r.per else list(r.per)
            self.key_rows += [(r, f) for f in fields]
        self.rule_f[:, kernel.F_KEYED] = [self.key_base.get(id(r), -1) for r in rules] or [-1]
        self.rule_f[:, kernel.F_KEYS] = [len(getattr(r, "per", ())) for r in rules] or [0]
        self.tagged = tagged([policy])
        #: Per row of `fkey` of a frequency or cooldown rule's key that is a shape's field,
        #: per shape, the code in `words` of its value (-1: none).
        self.shape_key = np.full((max(len(self.key_rows), 1), n_shapes), -1, dtype=np.int32)
        #: Per content rule, per distinct content: what it matched (None: nothing).
        self.matches = [
            [r._search(Content(c["subject"], c["body"], bool(c["discount"]))) for c in contents]
            for r in content_rules
        ]
        self.content_hit = np.zeros(
            (max(len(content_rules), 1), max(len(contents), 1)), dtype=np.bool_
        )
        for i, found in enumerate(self.matches):
            self.content_hit[i, : len(found)] = [m is not None for m in found]
        for i, r in enumerate(rules):
            f = self.rule_f[i]
            if isinstance(r, CapRule):
                f[kernel.F_COUNT] = r.count
                if r.window == "session":
                    f[kernel.F_BUDGET] = 1.0
                elif isinstance(r.window, str):
                    f[kernel.F_HALF_LIFE] = _PERIODS[r.window]  # a calendar period
                else:
                    f[kernel.F_SPAN] = r.window
            elif isinstance(r, GapRule):
                f[kernel.F_SPAN] = r.gap
            elif isinstance(r, PressureRule):
                f[kernel.F_BUDGET], f[kernel.F_HALF_LIFE] = r.budget, r.half_life
                f[kernel.F_FACTOR] = r.unanswered_factor
            elif isinstance(r, ActivityRule):
                f[kernel.F_COUNT] = 1.0 if r.when == "checkout" else 0.0
                f[kernel.F_SPAN] = r.quiet
            elif isinstance(r, TriggerRule):
                f[kernel.F_SPAN] = math.nan if r.delay is None else r.delay
                for k, name in enumerate(r.cancelled_by):
                    self.cancels[i, k] = kind_code.get(name, -1)
            elif isinstance(r, ContentRule):
                f[kernel.F_COUNT] = self.content_index[id(r)]
            elif isinstance(r, UnansweredRule):
                f[kernel.F_COUNT], f[kernel.F_SPAN] = r.after, r.gap
                f[kernel.F_BUDGET] = r.stop_after
            elif isinstance(r, CallbackRule):
                f[kernel.F_COUNT] = self.word("call")
            elif isinstance(r, DeclineRule):
                f[kernel.F_COUNT] = 1.0 if r.same_offer else 0.0
                f[kernel.F_SPAN] = r.window
            elif isinstance(r, SessionRule):
                f[kernel.F_COUNT] = kernel.CONDITIONS.index(r.condition)
                f[kernel.F_SPAN] = r.seconds
            elif isinstance(r, _HOURS):
                f[kernel.F_COUNT] = hours_index[id(r)]  # as `Hours` orders its tables
            elif isinstance(r, RevocationRule):
                f[kernel.F_COUNT] = revocation_index[id(r)]  # its bit in `ev_revoke`
            elif isinstance(r, FrequencyRule):
                f[kernel.F_COUNT] = r.count
                f[kernel.F_SPAN] = r.window or 0.0
                f[kernel.F_HALF_LIFE] = r.days or 0  # calendar days
                f[kernel.F_BUDGET] = 1.0 if r.requested == "exempt" else 0.0
                f[kernel.F_CONSENT] = _consent_days(r)
            elif isinstance(r, CooldownRule):
                f[kernel.F_COUNT] = r.offset
                f[kernel.F_BUDGET] = 1.0 if r.requested == "exempt" else 0.0
                f[kernel.F_CONSENT] = _consent_days(r)
        self.counts = np.zeros((n_rules, n_shapes), dtype=np.bool_)
        self.keys = np.zeros((n_rules, n_shapes), dtype=np.int32)
        #: Per shape: its trigger's event kind code (-1: no such event here, -2: none).
        self.shape_trigger = np.full(n_shapes, -2, dtype=np.int32)
        self.shape_weight = np.zeros(n_shapes)
        self.shape_asked = np.zeros(n_shapes, dtype=np.bool_)
        #: Per shape, codes in `words` of its channel, purpose and offer (-1: none); of
        #: the scope an unsubscribe through it names (its purpose, none for a transactional
        #: one) and the offer a decline through it names (none for an empty one).
        self.shape_channel = np.full(n_shapes, -1, dtype=np.int64)
        self.shape_purpose = np.full(n_shapes, -1, dtype=np.int64)
        self.shape_offer = np.full(n_shapes, -1, dtype=np.int64)
        self.shape_unsubscribes = np.full(n_shapes, -1, dtype=np.int64)
        self.shape_declines = np.full(n_shapes, -1, dtype=np.int64)
        offsets = [0]
        plan_rule: list[int] = []
        plan_mode: list[int] = []
        keys = [_Codes() for _ in rules]
        for s, values in enumerate(shapes):
            p = _proposal(values)
            lc = LedgerContact.sent("", p, 0.0, None)
            trigger = lc.trigger_event
            if trigger is not None:
                self.shape_trigger[s] = kind_code.get(trigger, -1)
                self.shape_asked[s] = trigger in REQUESTED_TRIGGERS
            self.shape_weight[s] = policy.weight(p.channel)
            self.shape_channel[s] = self.word(p.channel)
            self.shape_purpose[s] = self.word(p.purpose)
            self.shape_offer[s] = self.word(p.offer)
            if p.purpose != "transactional":
                self.shape_unsubscribes[s] = self.shape_purpose[s]
            if p.offer:
                self.shape_declines[s] = self.shape_offer[s]
            for i, r in enumerate(rules):
                if isinstance(r, ConsentRule):
                    self.counts[i, s] = p.purpose in r.global_exempt_purposes
                    # The consent key it needs an opt-in for, as `ConsentRule._why` finds
                    # it: one more than its index (0: none).
                    speaks = consent_keys(p.channel, p.purpose)
                    self.keys[i, s] = next(
                        (k + 1 for k, key in enumerate(r.require_opt_in) if key in speaks), 0
                    )
                if isinstance(r, CapRule | GapRule | UnansweredRule):
                    per = getattr(r, "per", ())
                    self.counts[i, s] = r._counting[1](lc)
                    self.keys[i, s] = keys[i].code(tuple(contact_key(lc, f) for f in per))
                elif isinstance(r, _KEYED):
                    # Outcomes are the kernel's to read (`keyed_rows`), and consent windows
                    # (`lc` holds no request's instant, so `consented` reads no zones).
                    if isinstance(r, FrequencyRule):
                        self.counts[i, s] = r.counts_contact(lc, ())
                    else:
                        self.counts[i, s] = r.scope.counts(lc, r.exempt)
                    for k, field in enumerate(r.per):
                        if not field.startswith("tags."):
                            row = self.key_base[id(r)] + k
                            self.shape_key[row, s] = self.word(contact_key(lc, field))
            flags = p.content.flags if p.content is not None else ()
            plan = policy.plan(p.channel, p.purpose, p.source, p.campaign, trigger, flags)
            for asked in (False, True):
                for step in plan.steps:
                    if asked and step.waived:
                        continue
                    plan_rule.append(index[id(step.rule)])
                    plan_mode.append(_MODES[step.mode])
                offsets.append(len(plan_rule))
        #: Per row of `fkey` read from tags, per distinct tags (and -1: none), a code of the
        #: tag's value (a frequency or cooldown rule's key: in `words`, -1 for none; a
        #: cap's, gap's or unanswered rule's: of its tags' values together, the others of
        #: its `per` keys being its shape's, `keys`), and whether one is not text.
        self.tag_key: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        objects = [_json_object(t) for t in tags] if self.tagged else []
        made: dict[tuple[tuple[str, ...], bool], tuple[np.ndarray, np.ndarray]] = {}
        for q, (r, key_field) in enumerate(self.key_rows):
            if isinstance(r, _EXACT):
                names = [f[5:] for f in getattr(r, "per", ()) if f.startswith("tags.")]
            elif key_field is not None and key_field.startswith("tags."):
                names = [key_field[5:]]
            else:
                names = []
            if not names:
                continue
            # Rules keyed by the same tags share their table (several packs count per
            # subject, or per account).
            shared = made.get((tuple(names), isinstance(r, _EXACT)))
            if shared is not None:
                self.tag_key[q] = shared
                continue
            tagged_values = [tuple(o.get(name) for name in names) for o in [*objects, {}]]
            odd = [
                any(v is not None and not isinstance(v, str) for v in vs) for vs in tagged_values
            ]
            if isinstance(r, _EXACT):
                codes = _Codes()
                table = [
                    codes.code(vs) if not bad else -1
                    for vs, bad in zip(tagged_values, odd, strict=True)
                ]
            else:
                table = [
                    self.word(vs[0]) if not bad else -1
                    for vs, bad in zip(tagged_values, odd, strict=True)
                ]
            self.tag_key[q] = (np.array(table, np.int32), np.array(odd))
            made[(tuple(names), isinstance(r, _EXACT))] = self.tag_key[q]
        self.plan_off = np.array(offsets, dtype=np.int64)
        self.plan_rule = np.array(plan_rule, dtype=np.int32)
        self.plan_mode = np.array(plan_mode, dtype=np.int8)
        pressure = next((r for r in rules if isinstance(r, PressureRule)), None)
        self.gauge_hl = pressure.half_life if pressure else DEFAULT_HALF_LIFE
        self.gauge_factor = pressure.unanswered_factor if pressure else DEFAULT_UNANSWERED_FACTOR
        self.horizon = policy.horizon
        self.horizon_message = (
            f"No time within {policy.horizon / 86400:g} days satisfies every rule."
        )
        #: Event kinds a trigger rule or a triggered proposal looks up: an outcome that is
        #: also such an event (an unsubscribe, a decline), which the kernel does not note
        #: among the events, sends its customer to the engine.
        looked_up = {k for r in rules if isinstance(r, TriggerRule) for k in r.cancelled_by}
        looked_up |= {v["trigger"] for v in shapes if v["trigger"]}
        self.signals_read = bool(looked_up & _signal_kinds())
        #: Outcomes that send their customer to the engine.
        self.fallback_outcomes = set(_SIGNALS) if self.signals_read else set()

    def word(self, value: str | None) -> int:
        return -1 if value is None else self.words.code(value)

    def keyed_rows(
        self, frame: pl.DataFrame, moved: np.ndarray, shape: np.ndarray, tag: np.ndarray,
        outcome: _Distinct, events: _Distinct, repeated: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The kernel's `fkey`, `fhit` and `ev_cool` (one row of nothing without such
        rules): per row of `key_rows`, per row of the slice (in the ledger's order:
        `moved[i]` is the row of `frame` at place i), the key's code (a frequency or
        cooldown rule's: in `words`, -1 for none; a cap's, gap's or unanswered rule's: of
        its keys together); a contact's from its shape or its tags (`tag`: each row's place
        among the distinct tags the tables were made for, -1: none), an event's from its
        properties; and at a frequency or cooldown rule's first row, whether it counts the
        contact (its outcome not excluded) or the contact or event begins a silence. And
        per row, whether a tag it is keyed by is not text (the engine's to fold: it would
        compare and word such values as Python does; their codes, -1, may then coincide
        with others', but only in customers the engine folds)."""
        n = len(shape)
        unsure = np.zeros(n, dtype=np.bool_)
        if not self.keyed:
            nothing = np.zeros((1, 1), dtype=np.bool_)
            return np.full((1, 1), -1, dtype=np.int32), nothing, nothing[0], unsure
        is_contact = shape >= 0
        fkey = np.full((len(self.key_rows), n), -1, dtype=np.int32)
        fhit = np.zeros((len(self.key_rows), n), dtype=np.bool_)
        for q, (rule, key_field) in enumerate(self.key_rows):
            if isinstance(rule, _EXACT):
                # Its shape's keys and its tags' values, as one code (equal where both are).
                table, odd = self.tag_key[q]
                unsure |= looked_up(odd, tag)
                i = self.rules.index(rule)
                both = self.keys[i][np.maximum(shape, 0)].astype(np.int64) * len(table)
                both += looked_up(table, tag)
                codes = np.unique(both[is_contact], return_inverse=True)[1]
                fkey[q, is_contact] = codes.reshape(-1)
            elif q in self.tag_key:
                table, odd = self.tag_key[q]
                fkey[q] = looked_up(table, tag)
                unsure |= looked_up(odd, tag)
            elif key_field is not None:
                fkey[q] = np.where(is_contact, self.shape_key[q][np.maximum(shape, 0)], -1)
        for rule in self.keyed:
            q = self.key_base[id(rule)]
            if isinstance(rule, _EXACT):
                continue
            if isinstance(rule, FrequencyRule):
                fhit[q] = is_contact & ~outcome.among(rule.exclude_outcomes)
                continue
            fhit[q] = is_contact & outcome.among(rule.after_outcomes)
            at = np.flatnonzero(events.among(rule.after_events) & ~repeated & ~is_contact)
            if not (rule.event_channels or rule.per) or not len(at):
                fhit[q, at] = True
                continue
            for i, props in zip(at.tolist(), _properties(frame, moved[at]), strict=True):
                channel = props.get("channel")
                if rule.event_channels and channel and channel not in rule.event_channels:
                    continue
                fhit[q, i] = True
                for k, name in enumerate(rule.per):
                    fkey[q + k, i] = self.word(_event_key(props, name))
        cooling = [self.key_base[id(r)] for r in self.keyed if isinstance(r, CooldownRule)]
        ev_cool = fhit[cooling].any(axis=0) & ~is_contact if cooling else np.zeros(1, np.bool_)
        return fkey, fhit, ev_cool, unsure

    @property
    def tables(self) -> tuple[np.ndarray, ...]:
        return (
            self.rule_kind,
            self.rule_f,
            self.counts,
            self.keys,
            self.shape_weight,
            self.shape_asked,
            self.cancels,
            self.content_hit,
            self.shape_channel,
            self.shape_purpose,
            self.shape_offer,
            self.shape_unsubscribes,
            self.shape_declines,
        )


@cache
def _signal_kinds() -> frozenset[str]:
    """The event kinds outcomes turn into (`model.outcome_signal`)."""
    from tactful.model import Contact, ContactStatus

    found = set()
    for outcome in SIGNAL_OUTCOMES:
        c = Contact.from_proposal(
            "x",
            ContactProposal("x", "email", "marketing"),
            datetime(2026, 1, 1, tzinfo=UTC),
            status=ContactStatus.SENT,
        )
        signal = outcome_signal(c, outcome, c.at)
        if signal is not None:
            found.add(str(signal.kind))
    return frozenset(found)


#: Local days an hours rule's open spans are laid out for past a slice's last contact: a
#: search that runs further hands its customer to the engine.
HOURS_AHEAD_DAYS = 120
#: Local days laid out beyond those a slice asks for (`days_for`).
HOURS_SLACK_DAYS = 31


@dataclass
class Days:
    """One hours rule's open spans in one zone (country, subdivision), day after day from
    `first`: the microsecond each local day begins, where its spans are, the spans."""

    first: date
    bounds: np.ndarray
    day_off: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    #: Every day's beginning checked: the instant is dated that day, the microsecond
    #: before it the day before (as `datetime.fromtimestamp` dates instants).
    exact: bool
    #: Per day, what `Hours.local_all` words before and after a time that day (None: the
    #: day is not 24 hours of one offset), kept as slices ask.
    around: dict[int, tuple[str, str] | None] = field(default_factory=dict)

    @property
    def last(self) -> date:
        return self.first + timedelta(days=len(self.bounds) - 2)


def _holiday_spans(
    rule: HolidayRule, tz: ZoneInfo, subdivision: str | None, day: date
) -> tuple[tuple[float, float], ...]:
    """A holiday rule's day as an hours rule's: open from its beginning to the next day's,
    but on a holiday it honours (`HolidayRule.check` moves to the next day's beginning).
    The two searches give up differently (the rule after 30 moves a zone, the kernel
    beyond the days laid out, handing the customer to the engine): only a run of more
    than 30 holidays in a row, which no calendar has, could tell them apart."""
    if rule.holiday(day, subdivision):
        return ()
    return ((day_start(day, tz), day_start(day + timedelta(days=1), tz)),)


def lay_out(
    rule: HoursRule | HolidayRule | None, tz: ZoneInfo, country: str | None,
    subdivision: str | None, first: date, last: date,
) -> Days:  # fmt: skip
    """`rule._spans` of each local day from `first` to `last` (`_holiday_spans` for a
    holiday rule, whose `subdivision` is its own reading of the customer's; None: the
    calendar alone, each day's beginning, no spans)."""
    n = (last - first).days + 1
    bounds = np.empty(n + 1, dtype=np.int64)
    day_off = np.zeros(n + 1, dtype=np.int64)
    begin: list[float] = []
    end: list[float] = []
    exact = True
    for k in range(n + 1):
        day = first + timedelta(days=k)
        us = kernel.micros(day_start(day, tz))
        bounds[k] = us
        before = datetime.fromtimestamp((us - 1) / 1e6, tz).date()
        exact = exact and datetime.fromtimestamp(us / 1e6, tz).date() == day
        exact = exact and before == day - timedelta(days=1)
        if k < n and rule is not None:
            spans = (
                _holiday_spans(rule, tz, subdivision, day)
                if isinstance(rule, HolidayRule)
                else rule._spans(tz, country, subdivision, day)
            )
            for a, b in spans:
                begin.append(a)
                end.append(b)
            day_off[k + 1] = len(begin)
    exact = exact and bool((np.diff(bounds) > 0).all())
    return Days(first, bounds, day_off, np.array(begin), np.array(end), exact)


#: Laid-out days kept across slices (a worker folds many): per rule (`_CALENDAR`: the
#: calendar alone), zone, country and subdivision.
_DAYS: dict[tuple[object, str, str | None, str | None], Days] = {}
_CALENDAR = object()


def days_for(
    rule: HoursRule | HolidayRule | None, tz: ZoneInfo, country: str | None,
    subdivision: str | None, first: date, last: date,
) -> Days:  # fmt: skip
    key = (_CALENDAR if rule is None else rule.token, tz.key, country, subdivision)
    found = _DAYS.get(key)
    if found is None or found.first > first or found.last < last:
        if found is not None:
            first, last = min(first, found.first), max(last, found.last)
        # Laid out a month wider each way: slices of one log reach a few days apart, and
        # each reach past the days laid out would lay them all out again.
        slack = timedelta(days=HOURS_SLACK_DAYS)
        first = first - slack if first > date.min + slack else date.min
        last = last + slack if last < date.max - slack else date.max
        found = _DAYS[key] = lay_out(rule, tz, country, subdivision, first, last)
    return found


@dataclass
class Place:
    """Where a customer may be: `Context.zones`, `.country`, the subdivision and
    `.regions`."""

    zones: tuple[ZoneInfo, ...]
    country: str | None
    subdivision: str | None
    regions: frozenset[str]


class Hours:
    """The slice's customers' places, each hours rule's days in each of their zones, as
    the kernel's `hours` tables, and which rules bind at each place (`rule_here`: the
    regions a rule is limited to, against where a customer may be). `profiles()`: each
    customer's `PROFILE_COLUMNS`, one row per customer in the slice's order (asked for
    where the policy has hours rules, rules limited to regions, revocations or rules that
    count local days: their calendar, `calendar`); `ts`: the slice's instants (epoch
    seconds)."""

    def __init__(
        self,
        policy: Policy,
        n_customers: int,
        profiles: Callable[[], pl.DataFrame],
        ts: np.ndarray,
    ) -> None:
        rules: list[HoursRule | HolidayRule | None] = [
            r for r in policy.rules if isinstance(r, _HOURS)
        ]
        #: Each hours rule's index in the tables, by `id`.
        self.index = {id(r): h for h, r in enumerate(rules)}
        #: The tables' row of the calendar alone (each local day's beginning), after the
        #: hours rules', for the rules that count local days (-1: none).
        self.calendar = -1
        if any(_calendar(r) for r in policy.rules):
            self.calendar = len(rules)
            rules.append(None)
        self.places: list[Place] = []
        self.cust_place = np.zeros(max(n_customers, 1), dtype=np.int32)
        #: Customers whose days could not be laid out exactly: the engine's.
        self.inexact = np.zeros(n_customers, dtype=np.bool_)
        tables: list[Days] = []
        self.place_tab = np.full((max(len(rules), 1), 1, 1), -1, dtype=np.int32)
        self.n_zones = np.zeros(1, dtype=np.int32)
        # Rules limited to regions, and revocations (whose reasons date the reply in the
        # customer's first zone), need the places too.
        placed = [r for r in policy.rules if r.scope.regions or isinstance(r, RevocationRule)]
        #: Per place (then per rule of the policy), whether the rule binds a customer
        #: there: one limited to regions where the customer may be in one of them (or
        #: where nothing tells where they are), every other everywhere.
        self.rule_here = np.ones(len(policy.rules), dtype=np.bool_)
        if not (rules or placed) or not n_customers:
            self.tables = tables
            return
        firsts = profiles().select(PROFILE_COLUMNS).rows()
        codes: dict[tuple[Any, ...], int] = {}
        for c, (timezone, country, subdivision, phones) in enumerate(firsts):
            key = (timezone, country, subdivision, phones)
            code = codes.get(key)
            if code is None:
                profile = CustomerProfile(
                    "",
                    timezone=timezone or None,
                    country=country or None,
                    subdivision=subdivision or None,
                    phones=_split(phones),
                )
                place = Place(
                    customer_zones(profile),
                    customer_country(profile),
                    subdivision or None,
                    customer_regions(profile),
                )
                code = codes[key] = len(self.places)
                self.places.append(place)
            self.cust_place[c] = code
        self.rule_here = np.array(
            [
                not r.scope.regions or not p.regions or in_regions(p.regions, r.scope.regions)
                for p in self.places
                for r in policy.rules
            ],
            dtype=np.bool_,
        )
        if not rules:
            self.tables = tables
            return
        lo, hi = float(ts.min()) - 86400.0, float(ts.max()) + HOURS_AHEAD_DAYS * 86400.0
        widest = max(len(p.zones) for p in self.places)
        self.place_tab = np.full((len(rules), len(self.places), widest), -1, dtype=np.int32)
        self.n_zones = np.array([len(p.zones) for p in self.places], dtype=np.int32)
        inexact_places = set()
        index: dict[int, int] = {}
        for h, rule in enumerate(rules):
            for p, place in enumerate(self.places):
                if rule is None:
                    country = subdivision = None
                elif isinstance(rule, HolidayRule):
                    country = None
                    subdivision = rule.subdivision_of(place.subdivision)
                else:
                    country = place.country if rule.holidays else None
                    subdivision = place.subdivision
                for z, tz in enumerate(place.zones):
                    first = datetime.fromtimestamp(lo, tz).date()
                    last = datetime.fromtimestamp(hi, tz).date()
                    days = days_for(rule, tz, country, subdivision, first, last)
                    if not days.exact:
                        inexact_places.add(p)
                    found = index.get(id(days))
                    if found is None:
                        found = index[id(days)] = len(tables)
                        tables.append(days)
                    self.place_tab[h, p, z] = found
        self.inexact = np.isin(self.cust_place[:n_customers], list(inexact_places))
        self.tables = tables

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        t = self.tables
        bound_off = np.cumsum([0] + [len(d.bounds) for d in t]).astype(np.int64)
        span_base = np.cumsum([0] + [len(d.begin) for d in t]).astype(np.int64)
        empty_i, empty_f = np.zeros(1, dtype=np.int64), np.zeros(1)
        first = np.array([d.first.toordinal() for d in t], dtype=np.int64) if t else empty_i
        return (
            self.place_tab,
            self.n_zones,
            bound_off,
            np.concatenate([d.bounds for d in t]) if t else empty_i,
            np.concatenate([d.day_off for d in t]) if t else empty_i,
            span_base,
            np.concatenate([d.begin for d in t]) if t else empty_f,
            np.concatenate([d.end for d in t]) if t else empty_f,
            first,  # each table's first day, as `date.toordinal` counts
        )

    def local_all(self, rule: HoursRule, places: np.ndarray, ts: np.ndarray) -> pl.Series:
        """`local` of each instant `ts[i]` for a customer at `places[i]`, JSON-escaped, as
        reasons show it; 3x quicker than `local` for each. Where the instant's local day
        (in the place's first zone, as laid out for the rule) is 24 hours long, of one UTC
        offset from beginning to end, the local time is the time since the day began;
        other instants are worded by `local`."""
        us = kernel.micros_all(ts)
        h = self.index[id(rule)]
        # Per instant: the words before and after its time (an index in `pieces`, -1:
        # worded by `local`), and the minutes since its local day began.
        piece = np.full(len(ts), -1, dtype=np.int64)
        minute = np.zeros(len(ts), dtype=np.int64)
        pieces: list[tuple[str, str]] = []
        numbered: dict[tuple[int, int], int] = {}
        for place in np.unique(places).tolist():
            table = int(self.place_tab[h, place, 0])
            if table < 0:
                continue
            at = np.flatnonzero(places == place)
            days, where = self.tables[table], self.places[place]
            d = np.searchsorted(days.bounds, us[at], side="right") - 1
            inside = (d >= 0) & (d < len(days.bounds) - 1)
            at, d = at[inside], d[inside]
            met = np.unique(d).tolist()
            for k in met:
                if k not in days.around:
                    days.around[k] = self._around(rule, where, days, k)
            code = np.full(len(days.bounds), -1, dtype=np.int64)
            for k in met:
                found = days.around[k]
                if found is not None:
                    code[k] = numbered.setdefault((table, k), len(pieces))
                    if code[k] == len(pieces):
                        pieces.append(found)
            piece[at] = code[d]
            minute[at] = (us[at] - days.bounds[d]) // 60_000_000
        if pieces:
            before = pl.Series([b for b, _ in pieces], dtype=pl.String)
            after = pl.Series([a for _, a in pieces], dtype=pl.String)
            which = pl.Series(piece).replace(-1, None)
            clock = pl.Series(minute)
            out = pl.select(
                pl.concat_str(
                    before.gather(which),
                    (clock // 60).cast(pl.String).str.zfill(2),
                    pl.lit(":"),
                    (clock % 60).cast(pl.String).str.zfill(2),
                    after.gather(which),
                )
            ).to_series()
        else:
            out = pl.repeat(None, len(ts), dtype=pl.String, eager=True)
        rest = np.flatnonzero(piece < 0)
        if len(rest):
            wording = [
                _escaped(self.local(rule, int(places[i]), float(ts[i]))) for i in rest.tolist()
            ]
            out = out.scatter(rest, pl.Series(wording, dtype=pl.String))
        return out

    @staticmethod
    def _around(rule: HoursRule, where: Place, days: Days, k: int) -> tuple[str, str] | None:
        """What `local` words before and after a time on the `k`-th of `days`, or None where
        that day is not 24 hours of one UTC offset. (Days are laid out per zone,
        subdivision and, for a rule that keeps holidays, country: what this words.)"""
        tz = where.zones[0]
        begin, end = int(days.bounds[k]), int(days.bounds[k + 1])
        first = datetime.fromtimestamp(begin / 1e6, tz)
        last = datetime.fromtimestamp((end - 1) / 1e6, tz)
        if end - begin != 86_400_000_000 or first.utcoffset() != last.utcoffset():
            return None
        day = first.date()
        return _escaped(day.strftime("%A ")), _escaped(Hours._after(rule, where, day))

    @staticmethod
    def _after(rule: HoursRule, where: Place, day: date) -> str:
        """What `local` words after the time on `day`: the zone, and the holiday if the
        rule keeps them."""
        holiday = holiday_name(where.country, where.subdivision, day)
        return f" {where.zones[0].key}" + (f" ({holiday})" if holiday and rule.holidays else "")

    def local(self, rule: HoursRule, place: int, t: float) -> str:
        """`HoursRule.details`' `local`, for a customer at `place`."""
        where = self.places[place]
        at = datetime.fromtimestamp(t, where.zones[0])
        return at.strftime("%A %H:%M") + self._after(rule, where, at.date())


class _Distinct:
    """A text column as, per row, the index of its value among the column's distinct
    values (`names`; -1: null). For a categorical it is worked out on the codes, with no
    text read per row."""

    def __init__(self, column: pl.Series) -> None:
        self.names: list[str]
        self.index: np.ndarray
        numbered = _numbered(column) if column.dtype == pl.Categorical else None
        if numbered is not None:
            # Each row's place among the codes present: no text read, no hashing.
            self.index, used = numbered
            self.index[self.index == len(used)] = -1
            names = pl.Series(used.astype(np.uint32)).cat.to(column.dtype)
            self.names = names.cast(pl.String).to_list()
            return
        self.names = column.drop_nulls().unique().cast(pl.String).to_list()
        self.index = (
            column.cast(pl.String)
            .replace_strict(self.names, range(len(self.names)), default=-1)
            .cast(pl.Int64)
            .fill_null(-1)
            .to_numpy()
        )

    @classmethod
    def stacked(cls, parts: Sequence[pl.Series]) -> tuple[_Distinct, list[np.ndarray | None]]:
        """Of `parts` one after the other, those all null (a column only another file
        has) not read: the distinct values, and each part's rows' places among them
        (None for a part all null)."""
        given = [p.null_count() < len(p) for p in parts]
        read = [p for p, g in zip(parts, given, strict=True) if g]
        distinct = cls(pl.concat(read) if read else parts[0].clear())
        pieces = iter(np.split(distinct.index, np.cumsum([len(p) for p in read])[:-1]))
        return distinct, [next(pieces) if g else None for g in given]

    @classmethod
    def of(cls, names: list[str], index: np.ndarray) -> _Distinct:
        """Values already numbered: `names`, and per row its place among them (-1: null)."""
        distinct = cls.__new__(cls)
        distinct.names, distinct.index = names, index
        return distinct

    def among(self, values: Collection[str]) -> np.ndarray:
        """Per row, whether its value is one of `values`."""
        hit = np.array([n in values for n in self.names] + [False])
        found: np.ndarray = looked_up(hit, self.index)
        return found

    def mapped(self, value: Callable[[str], int], null: int) -> np.ndarray:
        """Per row, `value` of its value (`null` for none)."""
        table = np.array([value(n) for n in self.names] + [null], dtype=np.int64)
        found: np.ndarray = looked_up(table, self.index)
        return found


class LogCodes:
    """A log's contact shapes and contents, event kinds and outcomes, numbered once for
    every slice of it (`TimelineBuilder.add`), and each policy's tables for them.

    A slice then carries four columns of numbers where it would carry twelve of text
    (the shape's seven, the content's three, the event, the outcome), each one gathered
    into timeline order at the cost of its values' misses in memory; and each policy's
    `Prepared` tables are made once, not once per slice. A replay of 10M rows of courtesy
    (each thread's CPU time): slices built in 0.9 CPU-seconds instead of 1.5, folded in
    3.4-4.2 instead of 4.2-4.3, for 0.5-0.9 numbering the log."""

    def __init__(
        self, builder: TimelineBuilder, *, content: bool = True, tags: bool = False
    ) -> None:
        """`content`: whether to number the contents too (a policy with a content rule);
        `tags`: the contacts' tags (a frequency rule counting per tag)."""
        #: The log's customer ids, sorted (as the verdicts hold them: a categorical): a
        #: slice's `CUSTOMER_CODE` is each row's place among them.
        self.customers = builder.names.cast(pl.Categorical)
        #: The `PROFILE_COLUMNS` of customers (by their places among `customers`).
        self.profiles = builder.profiles
        read = [*SHAPE_COLUMNS, "outcome", "is_contact", *(CONTENT_COLUMNS if content else ())]
        read += ["tags"] if tags else []
        contact_parts = builder.parts(read)
        event_parts = builder.parts(["event"])
        with ThreadPoolExecutor(2) as pool:
            shaped = pool.submit(_coded_parts, contact_parts, SHAPE_COLUMNS, pl.col("is_contact"))
            contents = None
            if content:
                text = pl.col("subject").is_not_null() & (pl.col("subject") != "")
                text = text | (pl.col("body").is_not_null() & (pl.col("body") != ""))
                given = pl.col("is_contact") & (text | pl.col("discount").fill_null(False))
                contents = pool.submit(_coded_parts, contact_parts, CONTENT_COLUMNS, given)
            tagged = None
            if tags:
                given = pl.col("is_contact") & pl.col("tags").is_not_null()
                tagged = pool.submit(_coded_parts, contact_parts, ("tags",), given)
            events, kind = _Distinct.stacked([f.get_column("event") for f in event_parts])
            outcomes, outcome = _Distinct.stacked([f.get_column("outcome") for f in contact_parts])
            shape, self.shapes = shaped.result()
            self.contents: list[dict[str, Any]] = []
            if contents is not None:
                numbers, self.contents = contents.result()
                _add_parts(builder, "_content", numbers)
            #: The contacts' distinct tags (JSON objects), by their codes in `_tags`.
            self.tags: list[str] = []
            if tagged is not None:
                numbers, distinct = tagged.result()
                self.tags = [d["tags"] for d in distinct]
                _add_parts(builder, "_tags", numbers)
        #: Event kinds in the order of their names, as `fold_frame` numbers them.
        self.kinds = sorted(events.names)
        renumbered = np.array([self.kinds.index(k) for k in events.names] + [-1], np.int32)
        self.outcomes = outcomes.names
        _add_parts(builder, "_shape", shape)
        kind = [None if k is None else looked_up(renumbered, k) for k in kind]
        _add_parts(builder, "_event", kind)
        _add_parts(builder, "_outcome", outcome)
        #: The shapes' copied columns and the outcomes, to gather the verdicts' from (as
        #: the verdicts hold them: categoricals).
        self.shape_frame = (
            pl.DataFrame(self.shapes, schema={c: pl.String for c in SHAPE_COLUMNS}, orient="row")
            if self.shapes
            else pl.DataFrame(schema={c: pl.String for c in SHAPE_COLUMNS})
        ).cast(pl.Categorical)
        self.outcome_names = pl.Series(self.outcomes, dtype=pl.String).cast(pl.Categorical)
        self._prepared: dict[int, tuple[Policy, Prepared]] = {}
        self._lock = threading.Lock()

    def prepared(self, policy: Policy) -> Prepared:
        """`policy`'s tables for the log's shapes, kinds and contents: made once, each
        caller given its own copy of what a fold adds to (`Prepared.words`)."""
        with self._lock:
            found = self._prepared.get(id(policy))
            if found is None:
                made = Prepared(policy, self.shapes, self.kinds, self.contents, self.tags)
                found = self._prepared[id(policy)] = (policy, made)
        p = copy.copy(found[1])
        p.words = _Codes(p.words)
        return p


def _coded_parts(
    parts: Sequence[pl.DataFrame], columns: Sequence[str], rows: pl.Expr
) -> tuple[list[np.ndarray | None], list[dict[str, Any]]]:
    """`_coded` of the files' rows one after the other, each file's codes apart (None
    for a file with no such rows): of the one file with such rows alone where only one
    has them (the contacts'). `rows` picks contacts (`is_contact` and more), and the
    parts hold `is_contact`."""
    # A file without contacts (`rows` asks for contacts) is not read: its columns of
    # contacts' values are nulls never written, and reading text nulls faulted each page
    # of them in (the events' subjects and bodies, 7.7M each: ~60,000 faults, ~0.15 s
    # before any slice could fold).
    having = [
        j
        for j, f in enumerate(parts)
        if f.get_column("is_contact").any() and f.select(rows.any()).item()
    ]
    codes: list[np.ndarray | None] = [None] * len(parts)
    distinct: list[dict[str, Any]] = []
    if len(having) > 1:
        both = pl.concat([f.select(*columns, rows.alias("_in")) for f in parts])
        stacked, distinct = _coded(both, columns, pl.col("_in"))
        codes = list(np.split(stacked, np.cumsum([f.height for f in parts])[:-1]))
    elif having:
        codes[having[0]], distinct = _coded(parts[having[0]], columns, rows)
    return codes, distinct


def _add_parts(builder: TimelineBuilder, name: str, codes: Sequence[np.ndarray | None]) -> None:
    """Codes of each file's rows (None: -1 for all) as a column that slices can ask for:
    only the file that has them gathered, where one does."""
    having = [j for j, c in enumerate(codes) if c is not None]
    if len(having) == 1:
        builder.add(name, pl.Series(codes[having[0]]), file=having[0], fill=-1)
        return
    heights = builder.heights
    whole = [
        c if c is not None else np.full(h, -1, np.int32)
        for c, h in zip(codes, heights, strict=True)
    ]
    builder.add(name, pl.Series(np.concatenate(whole) if whole else np.zeros(0, np.int32)))


def fold_frame(
    frame: pl.DataFrame,
    policy: Policy,
    run: int = 0,
    *,
    engine_folded: list[str] | None = None,
    codes: LogCodes | None = None,
    whole: Callable[[], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`timeline.fold_columns` of a slice of whole customers for one policy the kernel
    covers, as a frame of `VERDICT_COLUMNS`: customers the kernel hands back (ties it does
    not order, days not laid out) folded by the engine, and named in `engine_folded` if
    given.

    With `codes`, the slice holds the log's numbers (`CODE_COLUMNS`) in place of the
    columns they number, and `whole()` builds it with every column, for the customers
    handed back."""
    from tactful.replay.local import VERDICT_SCHEMA

    n = frame.height
    # Each row's customer, as what tells customers apart: a coded slice's numbers (the
    # ids' text is made only for the verdicts, one per contact, not one per row).
    who = "customer_id" if codes is None else CUSTOMER_CODE
    ids = frame.get_column(who)
    starts = customer_bounds(ids)
    is_contact = frame.get_column("is_contact").to_numpy()
    contact = pl.col("is_contact")
    has_content = any(isinstance(r, ContentRule) for r in policy.rules)
    if codes is not None:
        # Writable, as `_coded` makes them: a read-only array is another type to numba,
        # which would compile the kernel again for it (~10 s).
        shape = frame.get_column("_shape").to_numpy(writable=True)
        events = _Distinct.of(codes.kinds, frame.get_column("_event").to_numpy())
        kinds = codes.kinds
        if has_content:
            content = frame.get_column("_content").to_numpy(writable=True)
        else:
            content = np.full(n, -1, dtype=np.int32)
        outcome = _Distinct.of(codes.outcomes, frame.get_column("_outcome").to_numpy())
        p = codes.prepared(policy)
        if "_tags" in frame.columns:
            tag = frame.get_column("_tags").to_numpy()
        else:
            tag = np.full(n, -1, dtype=np.int32)
    else:
        shape, shapes = _coded(frame, SHAPE_COLUMNS, contact)
        events = _Distinct(frame.get_column("event"))
        kinds = sorted(events.names)
        if has_content:
            text = pl.col("subject").is_not_null() & (pl.col("subject") != "")
            text = text | (pl.col("body").is_not_null() & (pl.col("body") != ""))
            content, contents = _coded(
                frame, CONTENT_COLUMNS, contact & (text | pl.col("discount").fill_null(False))
            )
        else:
            content, contents = np.full(n, -1, dtype=np.int32), []
        outcome = _Distinct(frame.get_column("outcome"))
        if "tags" in frame.columns and tagged([policy]):
            tag, distinct = _coded(frame, ("tags",), contact & pl.col("tags").is_not_null())
            tags = [d["tags"] for d in distinct]
        else:
            tag, tags = np.full(n, -1, dtype=np.int32), []
        p = Prepared(policy, shapes, kinds, contents, tags)
    # An event whose id the customer's ledger already holds is not folded again (the first
    # in the log is kept, in whatever order the ledger puts events at one instant).
    repeated = np.zeros(n, dtype=np.bool_)
    if frame.get_column("event_id").null_count() < n:
        repeated = (
            frame.select(
                pl.col("event_id").is_not_null() & ~pl.struct(who, "event_id").is_first_distinct()
            )
            .to_series()
            .to_numpy()
        )
    original = frame
    # Where the order of events at one instant matters (visits, opt-outs, declines,
    # snoozes, call-backs), the ledger's. Only a customer's events at one instant move,
    # among themselves: the columns that differ between them (kind, session, properties,
    # row, whether seen before) are read in that order; instants, the contacts' columns
    # and the profile are the same in either.
    order = None if self_contained(policy) else ledger_order(frame, ids, is_contact, starts, events)
    moved = np.arange(n) if order is None else order
    if order is not None:
        repeated = repeated[order]
        events.index = events.index[order]
    ev_kind = events.mapped(kinds.index, -1).astype(np.int32)
    ev_kind[repeated | is_contact] = -1
    # What each kind is, by its code in `ev_kind` (read only where it is one).
    kind_activity = np.array([k in _ACTIVITY for k in kinds] + [False])
    kind_engagement = np.array([k in _ENGAGEMENT for k in kinds] + [False])
    kind_visit_engages = np.array([k in _SESSION_ENGAGEMENTS for k in kinds] + [False])
    ev_signal, signals, signal_time, signal = _signals(p, frame, moved, events, outcome, repeated)
    ev_revoke, revoked = _revocations(p, frame, moved, events, repeated)
    ev_sid = np.full(n, -1, dtype=np.int64)
    visits = any(_visits(r) for r in policy.rules)
    if visits:
        # `_sessionize` keys a visit by the event's `session_id` property, as text: the
        # timeline's `session_id` column.
        sid = frame.get_column("session_id")
        # Codes equal where the ids are: the categorical's own (the timeline holds the
        # column as one), or else ranks, which sort the text (~5x slower).
        visit = sid.to_physical() if sid.dtype == pl.Categorical else sid.rank("dense")
        # Writable, as where `order` copies it: a read-only array is another type to numba.
        ev_sid = visit.cast(pl.Int64).fill_null(-1).to_numpy(writable=True)
        ev_sid = ev_sid if order is None else ev_sid[order]
        named = ev_sid >= 0
    unanswered = outcome.among(_UNANSWERED)
    known = outcome.index >= 0
    engaged = outcome.among(_ENGAGED)
    # Customers whose history a rule answered "allowed" would read: the engine's.
    needs = outcome.among(p.fallback_outcomes)
    fkey, fhit, ev_cool, unsure = p.keyed_rows(frame, moved, shape, tag, outcome, events, repeated)
    needs |= unsure
    if visits:
        # Two visits started at one instant without a session id share one key in the
        # ledger, which then keeps one of them: their customers go to the engine.
        started = ~repeated & events.among({str(EventKind.SESSION_STARTED)})
        at = np.flatnonzero(started & ~named)
        both = pl.DataFrame({"id": ids.gather(at), "at": frame.get_column("at_us").gather(at)})
        tied = np.zeros(n, dtype=np.bool_)
        tied[at] = both.is_duplicated().to_numpy()
        needs = needs | tied
    # Per customer (each has a row at least), whether any row needs the engine: by
    # segments, not a running sum over the slice (0.4 against 5 ms a slice).
    skip = np.logical_or.reduceat(needs, starts[:-1])
    if "trigger_at_us" in frame.columns:
        trigger_at = frame.get_column("trigger_at_us").cast(pl.Float64).to_numpy() / 1e6
    else:
        trigger_at = np.full(n, math.nan)
    ts = frame.get_column("at_us").to_numpy() / 1e6
    hours = Hours(
        policy,
        len(starts) - 1,
        (lambda: frame.select(PROFILE_COLUMNS).gather(starts[:-1]))
        if codes is None
        else (lambda: codes.profiles(ids.gather(starts[:-1]))),
        ts,
    )
    skip |= hours.inexact
    rows = frame.get_column("row").to_numpy().astype(np.int64)
    rows = rows if order is None else rows[order]
    nc = int(is_contact.sum())
    n_rules = len(p.rules)
    verdict = np.zeros(nc, dtype=np.int8)
    not_before = np.zeros(nc, dtype=np.int64)
    logged = np.zeros(nc)
    replayed = np.zeros(nc)
    r_off = np.zeros(nc + 1, dtype=np.int64)
    f_off = np.zeros(nc + 1, dtype=np.int64)
    room = max(nc * (n_rules + 1), 1)
    # Room for every rule's reason and flag on every contact, of which the kernel writes
    # the first few (one or two a contact), in order, and only those are read: left
    # unwritten (`np.empty`), not zeroed. Zeroed, ~120 MB a slice of courtesy (30 rules)
    # were written over for nothing: 0.6 CPU-seconds on 10M rows, most of it page faults.
    r_rule = np.empty(room, dtype=np.int32)
    r_value = np.empty(room)
    r_until = np.empty(room)
    r_aux = np.empty(room)
    f_rule = np.empty(max(nc * n_rules, 1), dtype=np.int32)
    kernel.fold(
        starts, skip, ts, is_contact, shape, unanswered, known, engaged, rows, ev_kind,
        kind_activity, kind_engagement,
        ev_sid, kind_visit_engages, ev_signal, signals, signal_time, signal, ev_revoke,
        len(p.revocations), fkey, fhit, ev_cool, hours.calendar, trigger_at, content,
        len(kinds),
        _index(kinds, EventKind.CHECKOUT_STARTED), _index(kinds, EventKind.ORDER_COMPLETED),
        _index(kinds, EventKind.SESSION_STARTED), _index(kinds, EventKind.SESSION_ENDED),
        _index(kinds, EventKind.CHAT_DISMISSED), visits, p.shape_trigger,
        p.plan_off, p.plan_rule, p.plan_mode, p.timeless, p.tables, hours.arrays,
        hours.cust_place, hours.rule_here, p.horizon, p.gauge_hl, p.gauge_factor,
        verdict, not_before, logged, replayed, r_off, r_rule, r_value, r_until, r_aux, f_off,
        f_rule,
    )  # fmt: skip
    # Each reason's customer's place (what an hours reason names).
    per_customer = np.add.reduceat(is_contact, starts[:-1], dtype=np.int64)
    contact_place = np.repeat(hours.cust_place[: len(starts) - 1], per_customer)
    reason_place = np.repeat(contact_place, np.diff(r_off)) if nc else np.zeros(0, np.int32)
    held, reasons = _reasons(
        p, hours, reason_place, r_off, r_rule, r_value, r_until, r_aux, revoked, fkey
    )
    contacts = original.select(c for c in COPIED_COLUMNS if c in frame.columns).filter(
        pl.Series(is_contact)
    )
    copied = {name: contacts.get_column(name) for name in contacts.columns}
    if codes is not None:
        # The shape's and the outcome's columns, from the log's lists of them, and the
        # customer's id from the log's.
        on = np.flatnonzero(is_contact)
        copied["customer_id"] = codes.customers.gather(ids.gather(on)).alias("customer_id")
        shaped = codes.shape_frame.gather(shape[on])
        copied |= {
            name: shaped.get_column(name) for name in COPIED_COLUMNS if name in shaped.columns
        }
        copied["outcome"] = _taken(codes.outcome_names, outcome.index[on])
    out: dict[str, Any] = {
        "run": pl.repeat(run, nc, dtype=pl.Int64, eager=True),
        "verdict": _VERDICT_NAMES.gather(np.maximum(verdict, 0)),
        "not_before_us": pl.Series(not_before).replace(-1, None),
        "rules": held,
        "reasons": reasons,
        "flags": _flags(p, f_off, f_rule),
        "outcome_observed": pl.Series(verdict == kernel.ALLOW) & copied["outcome"].is_not_null(),
        "pressure_logged": logged,
        "pressure_replayed": replayed,
    }
    for name in COPIED_COLUMNS:
        column = copied[name]
        if name == "trigger" and (column == "").any():
            # As `items_of` reads it: an empty trigger is none.
            column = column.cast(pl.String).replace("", None)
        out[name] = column
    folded = pl.DataFrame(
        [pl.Series(name, out[name]).cast(dtype) for name, dtype in VERDICT_SCHEMA.items()]
    )
    at = np.flatnonzero(verdict < 0)
    if not len(at):
        return folded
    # The customers handed back (sent on, or met something the kernel cannot answer),
    # through the engine, back in their places.
    handed = np.zeros(len(starts) - 1, dtype=np.bool_)
    handed[np.repeat(np.arange(len(starts) - 1), per_customer)[at]] = True
    if engine_folded is not None:
        named = ids.gather(starts[:-1][handed])
        engine_folded += (named if codes is None else codes.customers.gather(named)).to_list()
    if codes is not None:
        assert whole is not None, "fold_frame: a coded slice needs `whole` for the engine"
        original = whole()
    rest = original.filter(pl.Series(np.repeat(handed, np.diff(starts))))
    columns = {name: rest.get_column(name).to_list() for name in TIMELINE_COLUMNS}
    engine = pl.DataFrame(fold_columns(columns, [policy]), schema=VERDICT_SCHEMA)
    engine = engine.with_columns(pl.lit(run, dtype=pl.Int64).alias("run"))
    kept = np.flatnonzero(verdict >= 0)
    order = np.argsort(np.concatenate([kept, at]), kind="stable")
    return pl.concat([folded[kept], engine]).select(pl.all().gather(order))


def _taken(values: pl.Series, index: np.ndarray) -> pl.Series:
    """Per row, `values[index]` (null where the index is -1)."""
    at = pl.Series(index)
    return values.gather(pl.select(pl.when(at >= 0).then(at)).to_series())


_ACTIVITY = {str(k) for k in ACTIVITY_EVENTS}
_ENGAGEMENT = {str(k) for k in ENGAGEMENT_EVENTS}
_OUTCOME_SIGNAL = {"declined": kernel.DECLINED, "unsubscribed": kernel.UNSUBSCRIBED}
_OUTCOME_SIGNAL["complained"] = kernel.COMPLAINED


def _signals(
    p: Prepared,
    frame: pl.DataFrame,
    moved: np.ndarray,
    events: _Distinct,
    outcome: _Distinct,
    repeated: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What events do to the customer's opt-outs, declines, snooze and call-back, as
    `CustomerState._fold` reads their properties: per row, its place among the events
    that may (`kernel`'s `ev_signal`, -1: none), and what each of those does (`signals`,
    `signal_time`); and per row the signal a contact's outcome also is. Nothing where no
    rule reads them. Rows in the ledger's order: `moved[i]`, the row of `frame` at place
    i. A slice has a few thousand such events among its 500,000 rows."""
    n = frame.height
    ev_signal = np.full(n, -1, dtype=np.int32)
    signals = np.zeros((1, 4), dtype=np.int64)
    signal_time = np.full(1, math.nan)
    signal = np.zeros(n, dtype=np.int8)
    read: set[str] = set()
    if any(isinstance(r, ConsentRule | DeclineRule) for r in p.rules):
        # What `CustomerState._fold` files under opt-outs and declines.
        read |= _SUPPRESSIONS | _RESUBSCRIPTIONS | _DECLINE_KINDS
        signal = outcome.mapped(lambda o: _OUTCOME_SIGNAL.get(o, 0), 0).astype(np.int8)
    if any(isinstance(r, SnoozeRule) for r in p.rules):
        read.add("snooze_requested")
    if any(isinstance(r, CallbackRule) for r in p.rules):
        read.add("callback_requested")
    if not read:
        return ev_signal, signals, signal_time, signal
    at = np.flatnonzero(events.among(read) & ~repeated)
    ev_signal[at] = np.arange(len(at), dtype=np.int32)
    signals = np.zeros((max(len(at), 1), 4), dtype=np.int64)
    signal_time = np.full(max(len(at), 1), math.nan)
    stamps = frame.get_column("at_us").gather(at).to_list()
    kinds = [events.names[k] for k in events.index[at].tolist()]
    rows = zip(kinds, _properties(frame, moved[at]), stamps, strict=True)
    for i, (kind, props, us) in enumerate(rows):
        if kind == "snooze_requested":
            until = _snooze_until(us / 1_000_000, props)
            signals[i, 0] = kernel.UNSNOOZED if until is None else kernel.SNOOZED
            signal_time[i] = math.nan if until is None else until
        elif kind == "callback_requested":
            when = props.get("at") or props.get("callback_at")
            if when:
                channel = props.get("channel")
                signals[i, :2] = (kernel.CALL_BACK, p.word(str(channel) if channel else None))
                signal_time[i] = parse_datetime(when).timestamp()
            elif props.get("cancelled"):
                signals[i, 0] = kernel.NO_CALL_BACK
        elif kind in _DECLINE_KINDS:
            offer = props.get("offer")
            signals[i] = (kernel.DECLINED, 0, 0, p.word(str(offer) if offer else None))
        else:
            scope = _scope_of(props)
            if kind == "complained" and scope == (None, None):
                scope = (scope[0] or "email", "marketing")
            if kind == "opted_out" and not props.get("channel"):
                scope = (None, None)
            what = kernel.SUPPRESSION if kind in _SUPPRESSIONS else kernel.RESUBSCRIPTION
            how = kernel.OPT_OUT_KINDS.index(kind) if kind in _SUPPRESSIONS else 0
            signals[i] = (what, p.word(scope[0]), p.word(scope[1]), how)
    return ev_signal, signals, signal_time, signal


def _revocations(
    p: Prepared, frame: pl.DataFrame, moved: np.ndarray, events: _Distinct, repeated: np.ndarray
) -> tuple[np.ndarray, dict[int, tuple[dict[str, Any], float]]]:
    """What the events do to the policy's revocation rules, as `RevocationRule.revoked`
    reads the ledger: per row (in the ledger's order: `moved[i]` is the row of `frame` at
    place i), the rules its reply revokes (bit q of rule q among `p.revocations`) and
    those an opt-in lifts (bit `kernel.LIFTS + q`); and per revoking row, the reply's
    properties and instant, which its reasons show. One row of nothing without such
    rules."""
    rules = p.revocations
    if not rules:
        return np.zeros(1, dtype=np.int64), {}
    read = {k for r in rules for k in r.events} | {k.value for k in LIFTING}
    bits = np.zeros(frame.height, dtype=np.int64)
    revoked: dict[int, tuple[dict[str, Any], float]] = {}
    at = np.flatnonzero(events.among(read) & ~repeated)
    if not len(at):
        return bits, revoked
    kinds = [events.names[k] for k in events.index[at].tolist()]
    # One instant for every event that moves (they move among themselves only).
    stamps = (frame.get_column("at_us").gather(at).to_numpy() / 1e6).tolist()
    rows = zip(at.tolist(), kinds, _properties(frame, moved[at]), stamps, strict=True)
    for i, kind, props, ts in rows:
        b = 0
        for q, rule in enumerate(rules):
            if rule.revokes(kind, props):
                b |= 1 << q
            elif rule.lifts(kind, props):
                b |= 1 << (kernel.LIFTS + q)
        if b & ((1 << kernel.LIFTS) - 1):
            revoked[i] = (props, ts)
        bits[i] = b
    return bits, revoked


def _worded(rule: Rule, details: dict[str, str]) -> str:
    """`rule`'s message with `details` in its placeholders (as `engine._reason` fills
    them), JSON-escaped."""
    return _escaped(rule.message.format_map(_Placeholders(details)))


def _holiday_words(rule: HolidayRule, where: Place, t: float) -> str:
    """A holiday reason's message (`HolidayRule.details` at `t`), JSON-escaped."""
    return _worded(rule, rule.details_at(where.zones, rule.subdivision_of(where.subdivision), t))


def _revoked_words(
    rule: RevocationRule, reply: tuple[dict[str, Any], float], zone: ZoneInfo
) -> str:
    """A revocation reason's message (`RevocationRule.details`), JSON-escaped."""
    return _worded(rule, rule.details_of(*reply, zone))


def _keyed_words(
    rule: FrequencyRule | CooldownRule, value: float, keys: list[str | None],
    zones: Sequence[ZoneInfo],
) -> str:  # fmt: skip
    """A frequency reason's message (`FrequencyRule.details`: `value` counted) or a
    cooldown's (`CooldownRule.details`: the silence begun at `value`), JSON-escaped, the
    proposal's `per` keys being `keys`."""
    if isinstance(rule, FrequencyRule):
        return _worded(rule, rule.details_of(int(value), keys))
    return _worded(rule, rule.details_of(value, zones, keys))


def _properties(frame: pl.DataFrame, rows: np.ndarray) -> list[dict[str, Any]]:
    """The properties of the events at `rows` of `frame` (`timeline.event_properties`);
    the session ids made text after they are picked, not the whole slice's."""
    texts = frame.get_column("properties").gather(rows).to_list()
    sessions = frame.get_column("session_id").gather(rows).cast(pl.String).to_list()
    return [event_properties(t, s) for t, s in zip(texts, sessions, strict=True)]


def ledger_order(
    frame: pl.DataFrame,
    ids: pl.Series,
    is_contact: np.ndarray,
    starts: np.ndarray,
    kind: _Distinct,
) -> np.ndarray | None:
    """A permutation of the rows that puts each customer's events at one instant in the
    ledger's order (`state._event_order`, ties in log order), or None where that is the
    order they are in. Contacts keep their places.

    `ids`: each row's customer (its id, or any number that tells customers apart);
    `starts`: where each customer's rows begin (and the end); `kind`: each row's event kind.
    In the timeline's order a customer's events at one instant are next to one another
    (its contacts then)."""
    at = frame.get_column("at_us").to_numpy()
    events = ~is_contact
    first = np.zeros(len(at), dtype=np.bool_)
    first[starts[:-1]] = True  # a customer's first row is tied to nothing before it
    same = (at[1:] == at[:-1]) & events[1:] & events[:-1] & ~first[1:]
    tied = np.zeros(len(at), dtype=np.bool_)
    tied[1:] |= same
    tied[:-1] |= same
    rows = np.flatnonzero(tied)
    if not len(rows):
        return None
    at_us = frame.get_column("at_us")
    kinds = [kind.names[k] for k in kind.index[rows].tolist()]
    event_ids = frame.get_column("event_id").gather(rows).to_list()
    keys = [
        (_TIE_RANK.get(k, 1), k, e or "", json.dumps(x, sort_keys=True, default=str))
        for k, e, x in zip(kinds, event_ids, _properties(frame, rows), strict=True)
    ]
    groups = at_us.gather(rows).to_list()
    owners = ids.gather(rows).to_list()
    order = np.arange(frame.height)
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or (owners[end], groups[end]) != (owners[start], groups[start]):
            run = sorted(range(start, end), key=lambda q: keys[q])
            order[rows[start:end]] = rows[run]
            start = end
    return None if (order[rows] == rows).all() else order


def _index(kinds: list[str], kind: str) -> int:
    return kinds.index(str(kind)) if str(kind) in kinds else -1


#: Stands for what a reason shows (pressure, a content match) while its message is laid out.
_SHOWN = "\ue000"


def _message_parts(rule: Rule) -> list[str]:
    """The rule's message as `engine._reason` words it, JSON-escaped, cut where what a
    reason shows goes (`_shower`; consent and declines: the whole message)."""
    message = rule.message
    if "{" in message:
        details = {}
        if isinstance(rule, PressureRule):
            details = {"pressure": _SHOWN, "budget": rule._budget}
        elif isinstance(rule, ContentRule):
            details = {"match": _SHOWN}
        elif isinstance(rule, UnansweredRule):
            details = {"unanswered": _SHOWN}
        elif isinstance(rule, HoursRule):
            details = {"local": _SHOWN}
        elif isinstance(rule, SnoozeRule):
            details = {"until": _SHOWN}
        elif isinstance(rule, CallbackRule):
            details = {"at": _SHOWN}
        elif isinstance(
            rule,
            ConsentRule | DeclineRule | RevocationRule | HolidayRule | FrequencyRule | CooldownRule,
        ):
            return ["", ""]  # worded whole, reason by reason (`_shower`, `_revoked_words`)
        message = message.format_map(_Placeholders(details))
    return _escaped(message).split(_SHOWN)


def _escaped(text: str) -> str:
    """`text` as a JSON string holds it, quotes off."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _shower(p: Prepared, rule: Rule) -> Callable[[float, float], str]:
    """What a reason of `rule` shows in its message, JSON-escaped, as a function of `value`
    and `aux` from the kernel; for consent and declines, the whole message. (Pressure and
    calling hours: `tenths` and `Hours.local_all`, column by column.)"""
    words = list(p.words)

    def consent(value: float, aux: float) -> str:
        if value < 0:  # an opt-in required for one of its keys (`kernel.fold`)
            assert isinstance(rule, ConsentRule)
            return _worded(
                rule, {"scope": f"no opt-in recorded for {rule.require_opt_in[-int(value) - 1]}"}
            )
        packed = int(value)
        how, channel, purpose = packed >> 40, (packed >> 20) % 2**20 - 1, packed % 2**20 - 1
        what = " ".join(words[x] for x in (purpose, channel) if x >= 0) or "all contact"
        return _worded(
            rule, {"scope": f"{kernel.OPT_OUT_KINDS[how].replace('_', ' ')} from {what}"}
        )

    def decline(value: float, aux: float) -> str:
        offer = words[int(aux)] if aux >= 0 else None
        on = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d")
        return _worded(rule, {"offer": offer or "our offer", "declined_on": on})

    if isinstance(rule, ConsentRule):
        return consent
    if isinstance(rule, DeclineRule):
        return decline
    if isinstance(rule, ContentRule):
        matches = p.matches[p.content_index[id(rule)]]
        return lambda value, aux: _escaped(matches[int(value)] or "")
    if isinstance(rule, UnansweredRule):
        return lambda value, aux: str(int(value))
    if isinstance(rule, SnoozeRule | CallbackRule):
        when = "%Y-%m-%d %H:%M UTC"
        return lambda value, aux: datetime.fromtimestamp(value, UTC).strftime(when)
    raise AssertionError(f"no wording for a {rule.kind} rule's reasons")


def tenths(values: np.ndarray) -> pl.Series:
    """`f"{v:.1f}"` of each value (what a pressure reason shows), 3x quicker than
    formatting each: ten times the value rounded to a whole number, half to even, and
    written as digits, where that product cannot have been rounded across a half (values
    below 1e6 not within 1e-6 of one); Python's formatting for the rest."""
    with np.errstate(invalid="ignore"):
        tens = values * 10.0
        near_half = np.abs(tens - np.floor(tens) - 0.5) < 1e-6
        plain = np.isfinite(values) & ~np.signbit(values) & (values < 1e6) & ~near_half
    whole = pl.Series(np.where(plain, np.rint(tens), 0).astype(np.int64))
    written = pl.select(pl.concat_str(whole // 10, pl.lit("."), whole % 10)).to_series()
    rest = np.flatnonzero(~plain)
    if len(rest):
        formatted = pl.Series([f"{v:.1f}" for v in values[rest].tolist()], dtype=pl.String)
        written = written.scatter(rest, formatted)
    return written


def _lists(offsets: np.ndarray, codes: np.ndarray, names: Sequence[str], sep: str) -> pl.Series:
    """`sep.join(names[c] for c in codes[offsets[j]:offsets[j + 1]])` per j (null when
    none), as a categorical, as the verdicts hold such lists.

    Most contacts are held back by one rule or none, and the lists of two or more are
    few distinct ones: only the names and the distinct lists are made categoricals, and
    each row gathered as its value's code. Casting each row's text to a categorical
    looked it up in Polars' table of categories, and each list of two or more was joined
    (10M rows of courtesy, its rules and flags: 0.31 -> 0.14 CPU-seconds)."""
    counts = np.diff(offsets)
    # Each j's value: its one name, its joined list's place after the names, or none.
    at = np.full(len(counts), -1, dtype=np.int64)
    one = np.flatnonzero(counts == 1)
    at[one] = codes[offsets[one]]
    values = pl.Series(names, dtype=pl.String).cast(pl.Categorical)
    many = np.flatnonzero(counts > 1)
    if not len(many):
        return _taken(values, at)
    sizes = counts[many]
    starts = offsets[many]
    first = np.cumsum(sizes) - sizes  # each list's first place among the lists' codes
    taken = np.arange(int(sizes.sum())) + np.repeat(starts - first, sizes)
    base = len(names) + 1
    if base ** int(sizes.max()) < 1 << 62:
        # Each list as one number, its codes (+1) the digits: the distinct lists (a few
        # hundred of ~300,000 in 10M rows of courtesy) are joined, once each.
        place = np.arange(len(taken)) - np.repeat(first, sizes)
        weight = base ** (np.repeat(sizes, sizes) - 1 - place)
        keys = np.add.reduceat((codes[taken].astype(np.int64) + 1) * weight, first)
        distinct, which = np.unique(keys, return_inverse=True)
        joined = []
        for key in distinct.tolist():
            digits = []
            while key:
                key, digit = divmod(key, base)
                digits.append(names[digit - 1])
            joined.append(sep.join(reversed(digits)))
        at[many] = len(names) + which.reshape(-1)
        lists = pl.Series(joined, dtype=pl.String)
    else:
        # Lists too long to number: each joined. The offsets from their buffer: `pa.array`
        # of a numpy array imports pandas the first time (~0.2 s holding the
        # interpreter's lock, both fold threads waiting).
        ends = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        named = pl.Series(names, dtype=pl.String).gather(codes[taken])
        listed = pl.from_arrow(
            pa.ListArray.from_arrays(
                pa.Array.from_buffers(pa.int64(), len(ends), [None, pa.py_buffer(ends)]),
                named.to_arrow(),
            )
        )
        assert isinstance(listed, pl.Series)
        at[many] = len(names) + np.arange(len(many))
        lists = listed.list.join(sep)
    values = pl.concat([values, lists.cast(pl.Categorical)])
    return _taken(values, at)


def _reasons(
    p: Prepared,
    hours: Hours,
    place: np.ndarray,
    r_off: np.ndarray,
    r_rule: np.ndarray,
    r_value: np.ndarray,
    r_until: np.ndarray,
    r_aux: np.ndarray,
    revoked: dict[int, tuple[dict[str, Any], float]],
    fkey: np.ndarray,
) -> tuple[pl.Series, pl.Series]:
    """The `rules` and `reasons` columns, each reason as `engine._reason` words it and
    `Reason.as_dict` lays it out, in `json.dumps`'s format. `fkey`: the keys read per row
    (`Prepared.keyed_rows`), a frequency or cooldown reason's by its proposal's row in
    its `aux`. `revoked`: the replies that
    revoked consent, by row (`_revocations`)."""
    n = int(r_off[-1])
    rules = p.rules
    codes = r_rule[:n].astype(np.int64)
    codes[codes == kernel.HORIZON] = len(rules)
    ids = [r.id for r in rules] + ["horizon"]
    kinds = [r.kind for r in rules] + ["horizon"]
    heads = [
        json.dumps({"rule": i, "kind": k, "message": ""}, ensure_ascii=False)[:-2]
        for i, k in zip(ids, kinds, strict=True)
    ]
    parts = [_message_parts(r) for r in rules] + [[_escaped(p.horizon_message)]]
    # What a reason shows (`_shower`), where its message shows something.
    values = r_value[:n]
    shown = pl.repeat(None, n, dtype=pl.String, eager=True)
    showing = np.flatnonzero(np.array([len(x) > 1 for x in parts])[codes])
    aux = r_aux[:n]
    for c in np.unique(codes[showing]).tolist():
        at = showing[codes[showing] == c]
        rule = rules[c]
        if isinstance(rule, PressureRule):
            shown = shown.scatter(at, tenths(values[at]))
            continue
        if isinstance(rule, HoursRule):
            shown = shown.scatter(at, hours.local_all(rule, place[at], values[at]))
            continue
        if isinstance(rule, HolidayRule):
            words = [
                _holiday_words(rule, hours.places[h], t)
                for t, h in zip(values[at].tolist(), place[at].tolist(), strict=True)
            ]
            shown = shown.scatter(at, pl.Series(words, dtype=pl.String))
            continue
        if isinstance(rule, RevocationRule):
            words = [
                _revoked_words(rule, revoked[int(v)], hours.places[h].zones[0])
                for v, h in zip(values[at].tolist(), place[at].tolist(), strict=True)
            ]
            shown = shown.scatter(at, pl.Series(words, dtype=pl.String))
            continue
        if isinstance(rule, FrequencyRule | CooldownRule):
            names = [*p.words, None]  # a code of -1: none
            rows = fkey[p.key_base[id(rule)] :][: len(rule.per)]
            # (A frequency rule over a rolling window, in a policy that reads no places,
            # reads no zones either.)
            zones = [hours.places[h].zones if hours.places else () for h in place[at].tolist()]
            words = [
                _keyed_words(rule, v, [names[k] for k in rows[:, int(a)].tolist()], z)
                for v, a, z in zip(values[at].tolist(), aux[at].tolist(), zones, strict=True)
            ]
            shown = shown.scatter(at, pl.Series(words, dtype=pl.String))
            continue
        # Reasons that show the same thing are worded once (the offer counts for
        # declines only).
        show = _shower(p, rule)
        if isinstance(rule, DeclineRule):
            pairs = np.stack([values[at], aux[at]], axis=1)
            keys, which = np.unique(pairs, axis=0, return_inverse=True)
            words = [show(value, offer) for value, offer in keys.tolist()]
        else:
            distinct, which = np.unique(values[at], return_inverse=True)
            words = [show(value, 0.0) for value in distinct.tolist()]
        worded = pl.Series(words, dtype=pl.String).gather(which.reshape(-1))
        shown = shown.scatter(at, worded)
    offsets = r_off.astype(np.int64)
    # Each reason's JSON: its code's head and message pieces, what it shows between them,
    # and its `until`, written by `texts.reason_lists`.
    pieces = [piece.encode() for x in parts for piece in x]
    first_piece = np.concatenate([[0], np.cumsum([len(x) for x in parts])]).astype(np.int64)
    shown_text = shown.fill_null("").to_arrow(compat_level=pl.CompatLevel.oldest())
    shown_offsets, shown_bytes = _arrow_text(shown_text)
    ends, data = texts.reason_lists(
        offsets,
        codes,
        kernel.micros_all(r_until[:n]),
        shown_offsets,
        shown_bytes,
        *_packed([h.encode() for h in heads]),
        first_piece,
        *_packed(pieces),
    )
    held = np.diff(offsets) > 0
    lists = pa.LargeStringArray.from_buffers(
        len(held),
        pa.py_buffer(ends),
        pa.py_buffer(data),
        pa.py_buffer(np.packbits(held, bitorder="little")),
    )
    reasons = pl.from_arrow(lists)
    assert isinstance(reasons, pl.Series)
    return _lists(offsets, codes, ids, ";"), reasons.alias("reasons")


def _packed(items: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Texts as Arrow lays them out: offsets, and their bytes one after the other."""
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in items])]).astype(np.int64)
    return offsets, np.frombuffer(b"".join(items), dtype=np.uint8)


def _arrow_text(array: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A text Arrow array's offsets and bytes, as numpy arrays."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    at = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    return at, np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)


def _flags(p: Prepared, f_off: np.ndarray, f_rule: np.ndarray) -> pl.Series:
    return _lists(f_off.astype(np.int64), f_rule, [r.id for r in p.rules], ";")


def warm() -> None:
    """Compile the kernel into numba's cache: fold a small synthetic log through courtesy."""
    import tempfile

    from tactful.replay.io import load_log
    from tactful.replay.local import replay_local
    from tactful.replay.synthetic import write_log

    with tempfile.TemporaryDirectory(prefix="tactful-kernel-") as folder:
        files = write_log(folder, customers=3, seed=1)
        log = load_log(files.contacts, files.events, customers=files.customers)
        courtesy = Policy.load("courtesy")
        replay_local(log.source, [courtesy], workers=1)  # slices coded, as a replay folds
        fold_frame(log.timeline, courtesy)  # a timeline as it is
    texts.csv_instants(np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.bool_))  # the CSV's


if __name__ == "__main__":
    print("compiling the replay kernel (about a minute, once) ...", flush=True)
    warm()
