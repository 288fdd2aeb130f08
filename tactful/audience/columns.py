"""Many customers' states as columns: what the audience kernels read, one row per customer.

Contacts go into flat arrays (one entry per contact, customers' runs back to back, each in
the ledger's time order) with `offsets`; a contact's scope-relevant fields become one
`shape` code, so a rule's scope is tested once per distinct shape rather than per contact.
Facts read from the profile (zones, consent, preferences) become signature codes with a
representative customer each: a rule whose answer depends only on such a signature is
asked once per signature, on the representative, by its own scalar `check`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tactful.localtime import customer_country, customer_zones
from tactful.model import UNANSWERED_OUTCOMES, ContactStatus, Outcome
from tactful.state import CustomerState

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]
Bool = npt.NDArray[np.bool_]

#: What a contact's scope test and `per` keys read: channel, purpose, source, campaign,
#: trigger event, content flags, offer.
Shape = tuple[str, str, str | None, str | None, str | None, tuple[str, ...], str | None]

#: Status codes in `Snapshot.c_status`.
OTHER, SENT, HELD = 0, 1, 2

#: Times the kernels add durations to must lie in [2**30, 2**31 - 2**25) (2004 to 2037):
#: there a sum of two of them (durations whole multiples of 2**-22 s, below 2**25 s) is
#: exact, which is what lets a kernel state the scalar rule's float answer in closed form.
EXACT_LO = 2.0**30
EXACT_HI = 2.0**31 - 2.0**25


def exact_duration(seconds: float) -> bool:
    """Whether sums of `seconds` with in-range times are exact (see `EXACT_LO`)."""
    return 0 <= seconds < 2.0**25 and (seconds * 2.0**22).is_integer()


def exact_time(t: float) -> bool:
    return EXACT_LO <= t < EXACT_HI


class Codes:
    """Distinct values, numbered in order of first appearance, with the first row holding
    each (its representative)."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.values: list[Any] = []
        self.reps: list[int] = []

    def code(self, value: Any, row: int) -> int:
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
            self.reps.append(row)
        return found


@dataclass(slots=True)
class Snapshot:
    """Columns of `len(customer_ids)` customers' states (see the module docstring)."""

    customer_ids: list[str]
    states: list[CustomerState]
    # -- contacts, flat: customer i owns entries offsets[i]:offsets[i + 1] ----------------
    offsets: I64
    c_ts: F64
    c_shape: I32
    c_status: I8
    c_expires: F64  # inf: a hold that never expires (or not a hold)
    c_unanswered: Bool
    shapes: list[Shape]
    # -- per customer ----------------------------------------------------------------------
    exact: Bool  # every contact time in the exact range
    snooze_until: F64  # nan: no snooze
    activity_last: F64  # -inf: no activity
    activity_since: F64  # from here on the activity kernel's closed form holds
    checkout_open: Bool  # the last checkout started has no completed order after it
    sessions_over: F64  # -inf: no visit at all
    has_sessions: Bool
    has_declines: Bool
    has_callback: Bool
    consent: I32  # code in `consent_codes`: opt-outs in force and profile consent
    consent_codes: Codes
    place: I32  # code in `place_codes`: zones, country, subdivision
    place_codes: Codes
    pref_channels: I32  # code in `channel_codes`: the chosen channels (None: any)
    channel_codes: Codes
    pref_pace: Bool

    def __len__(self) -> int:
        return len(self.customer_ids)

    @classmethod
    def build(cls, states: Sequence[CustomerState]) -> Snapshot:
        """Columns of these states (kept, by reference, for the scalar fallback)."""
        n = len(states)
        shape_codes = Codes()
        consent_codes, place_codes, channel_codes = Codes(), Codes(), Codes()
        counts = np.zeros(n + 1, dtype=np.int64)
        ts: list[float] = []
        shape: list[int] = []
        status: list[int] = []
        expires: list[float] = []
        unanswered: list[bool] = []
        exact = np.ones(n, dtype=np.bool_)
        snooze = np.full(n, math.nan)
        act_last = np.full(n, -math.inf)
        act_since = np.full(n, -math.inf)
        checkout_open = np.zeros(n, dtype=np.bool_)
        over = np.full(n, -math.inf)
        has_sessions = np.zeros(n, dtype=np.bool_)
        has_declines = np.zeros(n, dtype=np.bool_)
        has_callback = np.zeros(n, dtype=np.bool_)
        consent = np.zeros(n, dtype=np.int32)
        place = np.zeros(n, dtype=np.int32)
        pref_channels = np.zeros(n, dtype=np.int32)
        pref_pace = np.zeros(n, dtype=np.bool_)
        places: dict[tuple[Any, ...], tuple[tuple[str, ...], str | None]] = {}
        for i, state in enumerate(states):
            declined = False
            for c in state.contacts:
                ts.append(c.ts)
                shape.append(
                    shape_codes.code(
                        (
                            c.channel,
                            c.purpose,
                            c.source,
                            c.campaign,
                            c.trigger_event,
                            c.flags,
                            c.offer,
                        ),
                        i,
                    )
                )
                st = c.status
                status.append(
                    SENT
                    if st is ContactStatus.SENT
                    else HELD
                    if st is ContactStatus.HELD
                    else OTHER
                )
                expires.append(math.inf if c.hold_expires is None else c.hold_expires)
                unanswered.append(c.outcome in UNANSWERED_OUTCOMES)
                declined = declined or c.outcome == Outcome.DECLINED
                if not EXACT_LO <= c.ts < EXACT_HI:
                    exact[i] = False
            counts[i + 1] = len(state.contacts)
            d = state.derived
            if d.snooze is not None:
                snooze[i] = d.snooze[1]
            last_checkout = d.checkouts[-1] if d.checkouts else -math.inf
            last_order = d.orders[-1] if d.orders else -math.inf
            if d.activity:
                act_last[i] = d.activity[-1]
            act_since[i] = max(act_last[i], last_checkout, last_order)
            checkout_open[i] = bool(d.checkouts) and not last_order > last_checkout
            if d.sessions:
                has_sessions[i] = True
                over[i] = state.sessions_over()
            has_declines[i] = declined or bool(d.declines)
            has_callback[i] = d.callback is not None
            profile = state.profile
            optouts = tuple(
                (scope, kind) for scope, (_, kind) in sorted(d.optouts.items(), key=_by_time)
            )
            consent[i] = consent_codes.code((optouts, tuple(sorted(profile.consent.items()))), i)
            key = (profile.timezone, profile.country, profile.phones)
            found = places.get(key)
            if found is None:
                zones = tuple(z.key for z in customer_zones(profile))
                found = places[key] = (zones, customer_country(profile))
            place[i] = place_codes.code((*found, profile.subdivision), i)
            prefs = profile.preferences
            chosen = prefs.get("channels") if prefs else None
            pref_channels[i] = channel_codes.code(
                None if chosen is None else tuple(sorted(chosen)), i
            )
            pref_pace[i] = bool(prefs) and bool(prefs.get("pace"))
        return cls(
            customer_ids=[s.profile.customer_id for s in states],
            states=list(states),
            offsets=np.cumsum(counts),
            c_ts=np.array(ts, dtype=np.float64),
            c_shape=np.array(shape, dtype=np.int32),
            c_status=np.array(status, dtype=np.int8),
            c_expires=np.array(expires, dtype=np.float64),
            c_unanswered=np.array(unanswered, dtype=np.bool_),
            shapes=shape_codes.values,
            exact=exact,
            snooze_until=snooze,
            activity_last=act_last,
            activity_since=act_since,
            checkout_open=checkout_open,
            sessions_over=over,
            has_sessions=has_sessions,
            has_declines=has_declines,
            has_callback=has_callback,
            consent=consent,
            consent_codes=consent_codes,
            place=place,
            place_codes=place_codes,
            pref_channels=pref_channels,
            channel_codes=channel_codes,
            pref_pace=pref_pace,
        )


def _by_time(item: tuple[Any, tuple[float, str]]) -> float:
    return item[1][0]
