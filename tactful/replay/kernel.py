"""The replay fold compiled to machine code (numba): `tactful.replay.fold` over arrays.

Each function here restates, operation for operation, a piece of the engine as a replay
uses it, so that the verdicts are the engine's to the last bit (`tests/replay/
test_native.py` holds every verdict, reason and pressure equal to `fold`'s):

- `fold`: `tactful.replay.fold.fold`, customer after customer: the ledger of allowed
  contacts (in the order `CustomerState` keeps it), what the events leave (`facts`, the
  visits, opt-outs, declines), the two pressure gauges; and for each contact
  `tactful.engine._decide` on a transient state (every rule asked through its `check`,
  nothing memoised), with `_search` for a deferred one;
- `fold`'s inner `check` and the `*_check` functions: each covered rule kind's `check`.

Only what these rule kinds read is kept: which kinds and parameters are covered is
`tactful.replay.native.unsupported`'s to say, and everything else goes through `fold`.
Python's floats are IEEE doubles and `math.exp2`/`log2` the C library's, as here; a sum
of floats is added left to right, as Python 3.11's `sum` adds them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

NEVER = math.inf


# -- borrowed arrays ---------------------------------------------------------------------
# Every array numba holds counts its references, atomically: each view (`held_ts[r]`, a
# slice), each array handed to a helper, each one unpacked from a tuple, costs a count up
# and one down, ~20 cycles each. In `fold`'s loop they came to half of its time (10M rows
# of courtesy: ~0.8 of ~1.7 CPU-seconds). `fold` therefore works on borrowed arrays: the
# same data, with no owner to count (as `numba.carray` makes), so that counting them, and
# every view of them, does nothing. An array `fold` makes itself is kept (`kept`) until
# its end, so that its borrowed twin never outlives it.


def _borrow(typingctx, array):  # type: ignore[no-untyped-def]
    """`borrowed(array)`: `array`'s data, shape and strides, without its owner, so that
    counting its references is a no-op. Valid while `array` lives."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        src = context.make_array(array)(context, builder, value=args[0])
        out = context.make_array(array)(context, builder)
        context.populate_array(
            out, data=src.data, shape=src.shape, strides=src.strides, itemsize=src.itemsize,
            meminfo=None, parent=None,
        )  # fmt: skip
        return out._getvalue()

    return array(array), codegen


def _keep(typingctx, array):  # type: ignore[no-untyped-def]
    """`kept(array)`: nothing, but `array` is alive up to here (its borrowed twin is used
    before)."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return context.get_dummy_value()

    return types.none(array), codegen


#: Also `tactful.replay.texts`'s (whose numba cache does not follow changes here: a change
#: to these two needs that cache cleared, as `make` does when this file changes).
borrowed: Any = intrinsic(_borrow)
kept: Any = intrinsic(_keep)

#: `tactful.engine.MAX_STEPS`: rounds of the search for a common allowed instant.
MAX_STEPS = 500

# Rule kinds (`native.KINDS` maps rule classes to these). `ALLOWS`: a kind whose rule
# allows every contact in a replay (preferences: a replay's profile has none).
CAP, GAP, PRESSURE, ACTIVITY, TRIGGER, CONTENT, ALLOWS, UNANSWERED, HOURS, SESSION = range(10)
CONSENT, DECLINE, SNOOZE, CALLBACK, REVOCATION, FREQUENCY, COOLDOWN = range(10, 17)
#: `ev_revoke`'s bits: rule q (among the revocation rules) revoked by a row at bit q, lifted
#: (an opt-in) at bit `LIFTS + q`.
LIFTS = 32
# Modes, as `PlanStep.mode`.
DEFER, DENY, FLAG = 0, 1, 2
# Verdicts.
ALLOW, DEFERRED, DENIED = 0, 1, 2
#: A reason's rule index for the search running past the horizon.
HORIZON = -1

# Columns of `rule_f`, a rule's parameters as floats: a cap's count (and its calendar
# period, `DAY`, `WEEK` or `MONTH`, as its half-life), an activity rule's
# `when: checkout` (1), a content rule's index among them; a window, gap, quiet or delay
# (nan: none); pressure's budget, half-life and unanswered factor. An unanswered rule's
# `after`, `gap` and `stop_after` are its count, span and budget; an hours rule's index
# among them is its count; a session rule's condition (`CONDITIONS`) and seconds its count
# and span; a cap over a visit has budget 1; a decline rule's `same_offer` (1) and window
# its count and span; a frequency rule's count and window (or calendar days: its half-life)
# are its count and span, whether it exempts what the customer asked for (1) its budget; a
# cooldown rule's days (one more from the next day) are its count, and its budget as a
# frequency rule's.
F_COUNT, F_SPAN, F_BUDGET, F_HALF_LIFE, F_FACTOR = 0, 1, 2, 3, 4
#: A frequency or cooldown rule's `consent_days` (0: none).
F_CONSENT = 5
#: A rule's first row of `fkey`, where its `per` keys are read per row (-1: per shape):
#: every frequency and cooldown rule's (a row per key, `F_KEYS` of them), and a cap's,
#: gap's or unanswered rule's keyed by a tag (one row: its keys together).
F_KEYED = 6
F_KEYS = 7


@njit(cache=True, inline="always")
def keys_match(fkey: np.ndarray, q: int, nk: int, a: int, b: int) -> bool:
    """`frequency.keys_match` of rows `a` and `b` over the `nk` keys at rows `q`... of
    `fkey`: strictly, a missing key (-1) on either side matching every value."""
    for f in range(nk):
        x, y = fkey[q + f, a], fkey[q + f, b]
        if x >= 0 and y >= 0 and x != y:
            return False
    return True


@njit(cache=True, inline="always")
def micros(u: float) -> int:
    """Microseconds since the epoch of `datetime.fromtimestamp(u, UTC)` (CPython rounds
    the fraction half to even, as `np.rint` does)."""
    whole = float(math.trunc(u))
    frac = np.rint((u - whole) * 1e6)  # u - whole: `modf`'s fraction, exactly
    if frac >= 1e6:
        frac -= 1e6
        whole += 1.0
    elif frac < 0:
        frac += 1e6
        whole -= 1.0
    return int(whole) * 1_000_000 + int(frac)


@njit(cache=True)
def micros_all(us: np.ndarray) -> np.ndarray:
    """`micros` of each instant; -1 for `NEVER`."""
    out = np.empty(len(us), dtype=np.int64)
    for i in range(len(us)):
        out[i] = -1 if us[i] == NEVER else micros(us[i])
    return out


@njit(cache=True, inline="always")
def on_grid(u: float) -> float:
    """`tactful.engine._on_grid` for instants a datetime holds."""
    us = micros(u)
    if us / 1e6 >= u:
        return us / 1e6
    return (us + 1) / 1e6


# -- the ledger ----------------------------------------------------------------------------


@njit(cache=True, inline="always")
def id_before(a: int, b: int) -> bool:
    """Whether contact id `row:a` sorts before `row:b` as text (`CustomerState` orders
    contacts at the same instant by id)."""
    da: int = _digits(a)
    db: int = _digits(b)
    if da == db:
        return a < b
    if da < db:
        head: int = b // 10 ** (db - da)
        return a <= head
    head = int(a // 10 ** (da - db))
    return head < b


@njit(cache=True, inline="always")
def _digits(x: int) -> int:
    n = 1
    while x >= 10:
        x //= 10
        n += 1
    return n


@njit(cache=True, inline="always")
def key_of(r: int, q: int, s: int, at: int, keys: np.ndarray, fkey: np.ndarray) -> int:
    """Rule `r`'s `per` key of the contact of shape `s` at row `at`: its shape's, or, for
    a rule keyed per row (`q`, its row of `fkey`; -1: none), its row's."""
    return int(fkey[q, at] if q >= 0 else keys[r, s])


@njit(cache=True, inline="always")
def counted(
    r: int,
    q: int,
    s: int,
    at: int,
    l_ts: np.ndarray,
    l_shape: np.ndarray,
    l_at: np.ndarray,
    m: int,
    counts: np.ndarray,
    keys: np.ndarray,
    fkey: np.ndarray,
    out: np.ndarray,
) -> int:
    """`Rule.counted_times` for a proposal of shape `s` at row `at`: the times of the
    ledger's contacts rule `r` counts with the same `per` keys (`key_of`), into `out`;
    how many."""
    key = key_of(r, q, s, at, keys, fkey)
    n = 0
    for i in range(m):
        sh = l_shape[i]
        if counts[r, sh] and key_of(r, q, sh, l_at[i], keys, fkey) == key:
            out[n] = l_ts[i]
            n += 1
    return n


# -- rules ---------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _fits(times: np.ndarray, u: float, count: int, window: float) -> bool:
    lo = np.searchsorted(times, u, side="right")
    hi = np.searchsorted(times, u + window, side="left")
    for j in range(lo - 1, hi):
        x = u if j == lo - 1 else times[j]
        inside = np.searchsorted(times, x, side="right") - np.searchsorted(
            times, x - window, side="right"
        )
        if inside + 1 > count:
            return False
    return True


@njit(cache=True, inline="always")
def cap_check(t: float, count: int, window: float, times: np.ndarray, n: int) -> float:
    """`CapRule.check` for a rolling window (`rolling_earliest`)."""
    if n < count:
        return t
    if times[n - 1] <= t and times[n - count] <= t - window:
        return t
    held = times[:n]
    candidates = np.empty(n + 1)
    candidates[0] = t
    k = 1
    for i in range(n):
        a = held[i] + window
        if a > t:
            candidates[k] = a
            k += 1
    ordered = np.sort(candidates[:k])
    for u in ordered:
        if _fits(held, u, count, window):
            return float(u)
    return NEVER


@njit(cache=True, inline="always")
def gap_check(t: float, gap: float, times: np.ndarray, n: int) -> float:
    """`GapRule.check` (every counted contact is sent: all count at `now`)."""
    if n == 0:
        return t
    last = times[n - 1]
    if last <= t and t - last >= gap:
        return t
    u = t
    moved = True
    while moved:
        moved = False
        for i in range(n):
            if abs(times[i] - u) < gap:
                u = times[i] + gap
                moved = True
    return u


@njit(cache=True, inline="always")
def terms(
    l_ts: np.ndarray,
    l_shape: np.ndarray,
    l_unanswered: np.ndarray,
    m: int,
    shape_weight: np.ndarray,
    shape_asked: np.ndarray,
    factor: float,
    t_ts: np.ndarray,
    t_w: np.ndarray,
) -> int:
    """`PressureRule._weighed`: the ledger's weighed contacts, into `t_ts`, `t_w`."""
    n = 0
    for i in range(m):
        sh = l_shape[i]
        if shape_asked[sh]:
            continue
        w = shape_weight[sh]
        if l_unanswered[i]:
            w = w * factor
        if w > 0:
            t_ts[n] = l_ts[i]
            t_w[n] = w
            n += 1
    return n


@njit(cache=True, inline="always")
def summed(t_ts: np.ndarray, t_w: np.ndarray, n: int, hl: float) -> float:
    """`PressureRule._summed`'s total, anchored at the last term."""
    anchor = t_ts[n - 1]
    total = 0.0
    for i in range(n):
        total += t_w[i] * math.exp2((t_ts[i] - anchor) / hl)
    return total


@njit(cache=True, inline="always")
def pressure_at(
    t_ts: np.ndarray, t_w: np.ndarray, n: int, total: float, hl: float, t: float
) -> float:
    """`PressureRule._at`."""
    if n == 0:
        return 0.0
    anchor = t_ts[n - 1]
    if t >= anchor:
        return total * math.exp2(-(t - anchor) / hl)
    p = 0.0
    for i in range(n):
        if t_ts[i] <= t:
            p += t_w[i] * math.exp2(-(t - t_ts[i]) / hl)
    return p


@njit(cache=True, inline="always")
def _clear(total: float, anchor: float, room: float, hl: float) -> float:
    if total <= room + 1e-9:
        return anchor
    if room <= 0:
        return NEVER
    u = anchor + hl * math.log2(total / room)
    step = 1e-6
    while total * math.exp2(-(u - anchor) / hl) > room + 1e-9:
        u += step
        step *= 2
    return u


@njit(cache=True, inline="always")
def pressure_check(
    t: float,
    w: float,
    budget: float,
    hl: float,
    t_ts: np.ndarray,
    t_w: np.ndarray,
    n: int,
    total: float,
) -> float:
    """`PressureRule.check`, `w` the proposal's weight (0 when asked for)."""
    room = budget - w
    if room < 0:
        return NEVER
    if n == 0:
        return t
    anchor = t_ts[n - 1]
    u = t
    p = pressure_at(t_ts, t_w, n, total, hl, u)
    for _ in range(64):
        if u >= anchor:
            clear = _clear(total, anchor, room, hl)
            return u if u >= clear else clear
        if p <= room + 1e-9:
            over = -1.0
            found = False
            for i in range(n):
                ts = t_ts[i]
                if (
                    ts > u
                    and pressure_at(t_ts, t_w, n, total, hl, ts) + w * math.exp2(-(ts - u) / hl)
                    > budget + 1e-9
                ):
                    over = ts
                    found = True
            if not found:
                return u
            u = over
        else:
            if room > 0:
                u = max(u + 1.0, u + hl * math.log2(p / room))
            else:
                return NEVER
        p = pressure_at(t_ts, t_w, n, total, hl, u)
    return NEVER


# -- one customer's decisions --------------------------------------------------------------


@njit(cache=True, inline="always")
def activity_check(t: float, quiet: float, checkout: bool, facts: np.ndarray) -> float:
    """`ActivityRule.check`: every event folded lies at or before `t`, so the last activity
    is the last one folded, and an order completed after the last checkout started is
    one at or before `t`."""
    last = facts[LAST_ACTIVITY]
    if last == -math.inf or t - last >= quiet:
        return t
    if checkout:
        started = facts[LAST_CHECKOUT]
        if started == -math.inf:
            return t
        if facts[LAST_ORDER] > started:
            return t
    return float(last + quiet)


@njit(cache=True, inline="always")
def trigger_check(
    t: float, trigger_ts: float, delay: float, cancels: np.ndarray, last_time: np.ndarray
) -> float:
    """`TriggerRule.check` for a triggered proposal (`trigger_ts` as `Context` finds it):
    an event that moots the trigger, if folded, lies at or before now."""
    for k in cancels:
        if k >= 0 and last_time[k] > trigger_ts:
            return NEVER
    if not math.isnan(delay) and t < trigger_ts + delay:
        return trigger_ts + delay
    return t


#: `SessionRule.condition`s, by their code.
CONDITIONS = ("live", "min_length", "dwell", "not_dismissed", "not_in_checkout")
LIVE, MIN_LENGTH, DWELL, NOT_DISMISSED, NOT_IN_CHECKOUT = range(5)
#: `tactful.state.SESSION_TIMEOUT`.
SESSION_TIMEOUT = 30 * 60.0
# A customer's visits, as columns of `visits` (nan: none).
V_START, V_LAST, V_ENDED, V_ENGAGED, V_DISMISSED, V_CHECKOUT = range(6)


@njit(cache=True, inline="always")
def session_at(visits: np.ndarray, ns: int, t: float) -> int:
    """`CustomerState.session_at`: the visit live at `t` (-1: none)."""
    for k in range(ns - 1, -1, -1):
        if visits[k, V_START] <= t:
            ended = visits[k, V_ENDED]
            if not math.isnan(ended) and ended <= t:
                return -1
            return k if t - visits[k, V_LAST] <= SESSION_TIMEOUT else -1
    return -1


@njit(cache=True, inline="always")
def session_check(
    t: float, condition: int, seconds: float, visits: np.ndarray, ns: int, facts: np.ndarray
) -> float:
    """`SessionRule.check` (every event folded lies at or before `t`)."""
    if condition == MIN_LENGTH:
        for k in range(ns - 1, -1, -1):
            if visits[k, V_START] <= t:
                ended = visits[k, V_ENDED]
                if not math.isnan(ended) and ended <= t:
                    return NEVER if ended - visits[k, V_START] < seconds else t
                return t
        return t
    k = session_at(visits, ns, t)
    if k < 0:
        return NEVER if condition == LIVE else t
    if condition == DWELL:
        engaged = visits[k, V_ENGAGED]
        ready = visits[k, V_START] + seconds
        return t if (not math.isnan(engaged) and engaged <= t) or t >= ready else float(ready)
    if condition == NOT_DISMISSED:
        dismissed = visits[k, V_DISMISSED]
        return NEVER if not math.isnan(dismissed) and dismissed <= t else t
    if condition == NOT_IN_CHECKOUT:
        started = visits[k, V_CHECKOUT]
        if not math.isnan(started) and started <= t:
            return t if facts[LAST_ORDER] > started else NEVER
    return t


@njit(cache=True, inline="always")
def sessionize(
    visits: np.ndarray,
    keys: np.ndarray,
    ns: int,
    current: int,
    ts: float,
    sid: int,
    started: bool,
    ended: bool,
    engages: bool,
    dismissed: bool,
    checkout: bool,
    order: bool,
) -> tuple[int, int]:
    """`CustomerState._sessionize` for an event at `ts` (visit key `sid`, -1: none); the
    number of visits and the current one."""
    k = -1
    if sid >= 0:
        if current >= 0 and keys[current] == sid:
            k = current  # most events belong to the visit of the one before
        else:
            for q in range(ns):
                if keys[q] == sid:
                    k = q
                    break
    else:
        k = current
        if k >= 0 and (
            not math.isnan(visits[k, V_ENDED]) or ts - visits[k, V_LAST] > SESSION_TIMEOUT
        ):
            k = -1
    if ended:
        if k >= 0:
            visits[k, V_ENDED] = ts
            visits[k, V_LAST] = max(visits[k, V_LAST], ts)
        return ns, k
    if k < 0 or (started and sid < 0):
        k = ns
        ns += 1
        keys[k] = sid
        visits[k, :] = math.nan
        visits[k, V_START] = ts
        visits[k, V_LAST] = ts
    elif ts > visits[k, V_LAST]:
        visits[k, V_LAST] = ts
    if engages:
        if math.isnan(visits[k, V_ENGAGED]):
            visits[k, V_ENGAGED] = ts
    elif dismissed:
        visits[k, V_DISMISSED] = ts
    elif checkout:
        visits[k, V_CHECKOUT] = ts
    elif order:
        visits[k, V_CHECKOUT] = math.nan
    return ns, k


#: `tactful.rules.hours.SEARCH_DAYS`.
SEARCH_DAYS = 370


@njit(cache=True, inline="always")
def day_of(t: float, table: int, bound_off: np.ndarray, bounds: np.ndarray) -> int:
    """The local day of instant `t` (`localtime.local_day`), as its index among the days
    laid out in `table` (`Hours.arrays`); -1 before them, their number or more after."""
    b0 = bound_off[table]
    days = bound_off[table + 1] - b0 - 1
    return int(np.searchsorted(bounds[b0 : b0 + days + 1], micros(t), side="right") - 1)


@njit(cache=True, inline="always")
def open_in(
    table: int, t: float, bound_off: np.ndarray, bounds: np.ndarray, day_off: np.ndarray,
    span_base: np.ndarray, span_begin: np.ndarray, span_end: np.ndarray,
) -> float:  # fmt: skip
    """`HoursRule.open_in` over one zone's laid-out local days (`Hours.arrays`): `bounds`
    are the microseconds each day begins (as `datetime.fromtimestamp` dates an instant, to
    the microsecond), `day_off` where each day's open spans are. nan: past the days laid
    out."""
    b0 = bound_off[table]
    days = bound_off[table + 1] - b0 - 1
    d = day_of(t, table, bound_off, bounds)
    if d < 0:
        return math.nan
    base = span_base[table]
    for k in range(SEARCH_DAYS):
        dd = d + k
        if dd >= days:
            return math.nan
        for q in range(base + day_off[b0 + dd], base + day_off[b0 + dd + 1]):
            if span_end[q] > t:
                return float(max(t, span_begin[q]))
    return NEVER


@njit(cache=True, inline="always")
def day_begins(d: int, table: int, bound_off: np.ndarray, bounds: np.ndarray) -> float:
    """`localtime.day_start` of laid-out day `d` of `table` (nan: not laid out)."""
    b0 = bound_off[table]
    if d < 0 or d > bound_off[table + 1] - b0 - 1:
        return math.nan
    return float(bounds[b0 + d] / 1e6)


#: A cap's calendar periods (`F_HALF_LIFE`; 0: none), as `CapRule.window` names them.
DAY, WEEK, MONTH = 1, 2, 3
#: `CapRule.check`'s bound on the periods it moves through.
PERIOD_STEPS = 400
#: `date(1970, 1, 1).toordinal()`.
EPOCH_ORDINAL = 719163


@njit(cache=True, nogil=True)
def civil(days: int) -> tuple[int, int, int]:
    """Year, month and day of a day counted from 1970-01-01 (the proleptic Gregorian
    calendar, as `datetime` counts; H. Hinnant's `civil_from_days`), from 0000-03-01 on
    (its era's adjustment for days before that is C's for a division that truncates). Also
    `tactful.replay.texts`'s (whose numba cache does not follow changes here)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return year, month, day


@njit(cache=True, inline="always")
def month_of(ordinal: int) -> tuple[int, int]:
    """The day of the month (1-31) of the date `ordinal` (as `date.toordinal` counts),
    and how many days its month has."""
    year, month, day = civil(ordinal - EPOCH_ORDINAL)
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return day, 29 if leap else 28
    return day, 30 if month in (4, 6, 9, 11) else 31


@njit(cache=True, inline="always")
def period_check(
    t: float, count: int, period: int, times: np.ndarray, n: int, table: int,
    bound_off: np.ndarray, bounds: np.ndarray, day_first: np.ndarray,
) -> float:  # fmt: skip
    """`CapRule.check` over calendar periods (`period_bounds` in the customer's first zone,
    whose local days `table` lays out): the first period from `t`'s with room, `times`
    (sorted) counted in each. nan: past the days laid out."""
    if n < count:
        return t
    last = bound_off[table + 1] - bound_off[table] - 1
    u = t
    for _ in range(PERIOD_STEPS):
        d = day_of(u, table, bound_off, bounds)
        if d < 0 or d >= last:
            return math.nan
        first, span = d, 1
        if period == WEEK:
            first, span = d - (day_first[table] + d - 1) % 7, 7  # Monday first
        elif period == MONTH:
            day, span = month_of(day_first[table] + d)
            first = d - (day - 1)
        start = day_begins(first, table, bound_off, bounds)
        end = day_begins(first + span, table, bound_off, bounds)
        if math.isnan(start) or math.isnan(end):
            return math.nan
        inside = np.searchsorted(times[:n], end, side="left") - np.searchsorted(
            times[:n], start, side="left"
        )
        if inside < count:
            return u
        u = end
    return NEVER


#: `tactful.rules.frequency.MAX_STEPS`: rounds of a frequency rule's search across zones.
FREQUENCY_STEPS = 100


@njit(cache=True, inline="always")
def calendar_check(
    t: float, count: int, span: int, times: np.ndarray, n: int, tables: np.ndarray,
    n_zones: int, bound_off: np.ndarray, bounds: np.ndarray, days: np.ndarray,
) -> float:  # fmt: skip
    """`FrequencyRule.check` over `span` calendar days, for the `n` counted contacts at
    `times` (sorted): in each zone (`tables`, one per zone) the earliest local day with
    room, round and round the zones. `days`: room for `n` days. nan: past the days laid
    out."""
    if n < count:
        return t
    u = t
    for _ in range(FREQUENCY_STEPS):
        moved = False
        for z in range(n_zones):
            table = tables[z]
            last = bound_off[table + 1] - bound_off[table] - 1
            for i in range(n):
                d = day_of(times[i], table, bound_off, bounds)
                if d < 0 or d >= last:
                    return math.nan
                days[i] = d
            today = day_of(u, table, bound_off, bounds)
            if today < 0 or today >= last:
                return math.nan
            first = cap_check(float(today), count, float(span), days, n)
            if first > today:
                begins = day_begins(int(first), table, bound_off, bounds)
                if math.isnan(begins):
                    return begins
                u = max(u, begins)
                moved = True
        if not moved:
            return u
    return NEVER


@njit(cache=True, inline="always")
def calendar_inside(
    t: float, span: int, times: np.ndarray, n: int, table: int, bound_off: np.ndarray,
    bounds: np.ndarray,
) -> int:  # fmt: skip
    """How many of `times` fall on the `span` local days ending with `t`'s (`table`: the
    first zone's), as `FrequencyRule.details` counts them."""
    today = day_of(t, table, bound_off, bounds)
    inside = 0
    for i in range(n):
        d = day_of(times[i], table, bound_off, bounds)
        if today - span + 1 <= d <= today:
            inside += 1
    return inside


@njit(cache=True, inline="always")
def days_after(
    ts: float, offset: int, latest: bool, tables: np.ndarray, n_zones: int,
    bound_off: np.ndarray, bounds: np.ndarray,
) -> float:  # fmt: skip
    """The beginning of the local day `offset` days after `ts`'s, the latest across zones
    (`CooldownRule.end_at`) or the earliest (`frequency.consent_end`); nan: past the days
    laid out."""
    end = -math.inf if latest else math.inf
    for z in range(n_zones):
        d = day_of(ts, tables[z], bound_off, bounds)
        if d < 0:
            return math.nan
        begins = day_begins(d + offset, tables[z], bound_off, bounds)
        if math.isnan(begins):
            return begins
        end = max(end, begins) if latest else min(end, begins)
    return end


@njit(cache=True, inline="always")
def hours_check(
    t: float, h: int, place: int, place_tab: np.ndarray, n_zones: np.ndarray,
    bound_off: np.ndarray, bounds: np.ndarray, day_off: np.ndarray, span_base: np.ndarray,
    span_begin: np.ndarray, span_end: np.ndarray,
) -> float:  # fmt: skip
    """`HoursRule.check`: open in every zone the customer may be in (nan: past the days
    laid out, for the engine to answer)."""
    u = t
    limit = t + SEARCH_DAYS * 86400.0
    while u <= limit:
        moved = False
        for z in range(n_zones[place]):
            v = open_in(place_tab[h, place, z], u, bound_off, bounds, day_off, span_base,
                        span_begin, span_end)  # fmt: skip
            if math.isnan(v):
                return v
            if v > u:
                u = v
                moved = True
        if not moved:
            return u
    return NEVER


# `signals[g, 0]`: what an event (the g-th of a slice's that do something, `ev_signal[i]`
# = g) or, in `signal`, a contact's outcome does to opt-outs and declines; then the
# scope's channel and purpose, and the opt-out's kind (an index in `OPT_OUT_KINDS`) or the
# declined offer.
SUPPRESSION, RESUBSCRIPTION, DECLINED, UNSUBSCRIBED, COMPLAINED = 1, 2, 3, 4, 5
# ... or to its snooze and call-back (the instant in `signal_time[g]`; a call-back's
# channel in `signals[g, 1]`, -1: a call).
SNOOZED, UNSNOOZED, CALL_BACK, NO_CALL_BACK = 6, 7, 8, 9
OPT_OUT_KINDS = ("opted_out", "unsubscribed", "complained")
# A customer's opt-outs (`Derived.optouts`, in the dict's order) and declines, as
# columns of `optouts` and `declines`; a scope's channel or purpose -1 for any.
O_CHANNEL, O_PURPOSE, O_KIND, O_TS = range(4)
D_TS, D_OFFER = range(2)


@njit(cache=True, inline="always")
def opt_out(optouts: np.ndarray, no: int, channel: int, purpose: int, kind: int, ts: float) -> int:
    """`optouts[scope] = (ts, kind)`: a scope already there keeps its place."""
    for q in range(no):
        if optouts[q, O_CHANNEL] == channel and optouts[q, O_PURPOSE] == purpose:
            optouts[q, O_KIND] = kind
            optouts[q, O_TS] = ts
            return no
    optouts[no, O_CHANNEL] = channel
    optouts[no, O_PURPOSE] = purpose
    optouts[no, O_KIND] = kind
    optouts[no, O_TS] = ts
    return no + 1


@njit(cache=True, inline="always")
def opt_in(optouts: np.ndarray, no: int, channel: int, purpose: int) -> int:
    """An opt-in: every opt-out lifted (no scope named), or the one for its scope."""
    if channel < 0 and purpose < 0:
        return 0
    for q in range(no):
        if optouts[q, O_CHANNEL] == channel and optouts[q, O_PURPOSE] == purpose:
            optouts[q : no - 1] = optouts[q + 1 : no].copy()
            return no - 1
    return no


@njit(cache=True, inline="always")
def consent_check(
    t: float, channel: int, purpose: int, exempt: bool, optouts: np.ndarray, no: int
) -> tuple[float, float]:
    """`ConsentRule.check` as far as opt-outs go (a replay's profile holds no consent):
    the earliest opt-out covering the channel and purpose; what it says, packed (kind, the
    scope's channel and purpose, each code plus one)."""
    best = -1
    for q in range(no):
        ch, pu = optouts[q, O_CHANNEL], optouts[q, O_PURPOSE]
        covers = (ch < 0 or ch == channel) and (pu < 0 or pu == purpose)
        if covers and (best < 0 or optouts[q, O_TS] < optouts[best, O_TS]):
            best = q
    if best < 0:
        return t, math.nan
    ch, pu = optouts[best, O_CHANNEL], optouts[best, O_PURPOSE]
    if ch < 0 and pu < 0 and exempt:
        return t, math.nan
    return NEVER, optouts[best, O_KIND] * 2.0**40 + (ch + 1) * 2.0**20 + (pu + 1)


@njit(cache=True, inline="always")
def decline_check(
    t: float,
    window: float,
    same_offer: bool,
    offer: int,
    declines: np.ndarray,
    nd: int,
    l_ts: np.ndarray,
    l_shape: np.ndarray,
    l_declined: np.ndarray,
    m: int,
    shape_offer: np.ndarray,
    aux: np.ndarray,
) -> tuple[float, float]:
    """`DeclineRule.check`: the latest decline (events first, then declined contacts; a
    tie keeps the first), the declined offer's code in `aux` (-1: none)."""
    latest = -math.inf
    declined = -1.0
    found = False
    for q in range(nd):
        d = declines[q, D_OFFER]
        if same_offer and d >= 0 and d != offer:
            continue
        if not found or declines[q, D_TS] > latest:
            latest, declined, found = declines[q, D_TS], d, True
    for i in range(m):
        if not l_declined[i]:
            continue
        d = shape_offer[l_shape[i]]
        if same_offer and d >= 0 and d != offer:
            continue
        if not found or l_ts[i] > latest:
            latest, declined, found = l_ts[i], float(d), True
    if not found or latest + window <= t:
        return t, math.nan
    aux[0] = declined
    return latest + window, latest


# Slots of a customer's `facts`: the last activity, checkout started, order completed and
# engagement (an engaging event, or an allowed contact answered or replied to); the end of
# the snooze (nan: none); the call-back asked for: when asked, for when, its channel (-1:
# a call; nan: no call-back).
LAST_ACTIVITY, LAST_CHECKOUT, LAST_ORDER, LAST_ENGAGEMENT = 0, 1, 2, 3
SNOOZE_UNTIL, CALLBACK_ASKED, CALLBACK_AT, CALLBACK_CHANNEL = 4, 5, 6, 7
#: `tactful.rules.callback.EARLY_TOLERANCE`.
EARLY_TOLERANCE = 15 * 60.0


@njit(cache=True, inline="always")
def callback_pending(
    facts: np.ndarray,
    l_ts: np.ndarray,
    l_shape: np.ndarray,
    m: int,
    shape_channel: np.ndarray,
    call: int,
) -> float:
    """`CallbackRule.pending`: the call-back's time, unless a contact on its channel
    already answered it (nan: none pending)."""
    when = float(facts[CALLBACK_AT])
    if math.isnan(when):
        return when
    channel = int(facts[CALLBACK_CHANNEL])
    if channel < 0:
        channel = call
    for i in range(m):
        if (
            l_ts[i] >= when - EARLY_TOLERANCE
            and l_ts[i] > facts[CALLBACK_ASKED]
            and shape_channel[l_shape[i]] == channel
        ):
            return math.nan
    return when


@njit(cache=True, inline="always")
def streak(
    r: int,
    q: int,
    s: int,
    at: int,
    l_ts: np.ndarray,
    l_shape: np.ndarray,
    l_at: np.ndarray,
    l_unanswered: np.ndarray,
    l_known: np.ndarray,
    m: int,
    counts: np.ndarray,
    keys: np.ndarray,
    fkey: np.ndarray,
    engaged: float,
) -> tuple[int, float]:
    """`UnansweredRule.streak`: every ledger contact lies at or before `t`."""
    n = 0
    last = math.nan
    key = key_of(r, q, s, at, keys, fkey)
    for i in range(m - 1, -1, -1):
        sh = l_shape[i]
        if not counts[r, sh] or key_of(r, q, sh, l_at[i], keys, fkey) != key or not l_known[i]:
            continue
        if l_ts[i] <= engaged:
            break
        if not l_unanswered[i]:
            break
        n += 1
        if math.isnan(last):
            last = l_ts[i]
    return n, last


@njit(cache=True, inline="always")
def hand_back(
    lo: int,
    hi: int,
    is_contact: np.ndarray,
    out_verdict: np.ndarray,
    r_off: np.ndarray,
    f_off: np.ndarray,
    j: int,
    nr: int,
    nf: int,
) -> int:
    """Rows `lo:hi`, a customer's, left to the engine: its contacts from the j-th get
    verdict -1 and no reasons or flags; the next contact's index."""
    for i in range(lo, hi):
        if is_contact[i]:
            out_verdict[j] = -1
            j += 1
            r_off[j] = nr
            f_off[j] = nf
    return j


@njit(cache=True, nogil=True)
def fold(
    starts: np.ndarray,
    skip: np.ndarray,
    ts: np.ndarray,
    is_contact: np.ndarray,
    shape: np.ndarray,
    unanswered: np.ndarray,
    known: np.ndarray,
    engaged: np.ndarray,
    row: np.ndarray,
    ev_kind: np.ndarray,
    kind_activity: np.ndarray,
    kind_engagement: np.ndarray,
    ev_sid: np.ndarray,
    kind_visit_engages: np.ndarray,
    ev_signal: np.ndarray,
    signals: np.ndarray,
    signal_time: np.ndarray,
    signal: np.ndarray,
    ev_revoke: np.ndarray,
    n_revocations: int,
    fkey: np.ndarray,
    fhit: np.ndarray,
    ev_cool: np.ndarray,
    calendar: int,
    trigger_at: np.ndarray,
    content: np.ndarray,
    n_kinds: int,
    checkout_kind: int,
    order_kind: int,
    started_kind: int,
    ended_kind: int,
    dismissed_kind: int,
    track_visits: bool,
    shape_trigger: np.ndarray,
    plan_off: np.ndarray,
    plan_rule: np.ndarray,
    plan_mode: np.ndarray,
    timeless: np.ndarray,
    tables: tuple,  # type: ignore[type-arg]
    hours: tuple,  # type: ignore[type-arg]
    cust_place: np.ndarray,
    rule_here: np.ndarray,
    horizon: float,
    gauge_hl: float,
    gauge_factor: float,
    out_verdict: np.ndarray,
    out_not_before: np.ndarray,
    out_logged: np.ndarray,
    out_replayed: np.ndarray,
    r_off: np.ndarray,
    r_rule: np.ndarray,
    r_value: np.ndarray,
    r_until: np.ndarray,
    r_aux: np.ndarray,
    f_off: np.ndarray,
    f_rule: np.ndarray,
) -> None:
    """`tactful.replay.fold.fold` for every customer of a timeline slice but those in
    `skip` (their contacts get verdict -1).

    Rows `starts[i]:starts[i + 1]` are customer i's, in time order; an event row has its
    kind's code in `ev_kind` (-1: an event the ledger would not keep, a repeated id), what
    a kind is in `kind_activity`, ... (per kind code), and its place in `signals` in
    `ev_signal` (-1: none). For
    the j-th contact of the slice: its verdict, `not_before` (microseconds, -1 for none),
    the pressures logged and replayed; its reasons `r_off[j]:r_off[j + 1]` (rule index or
    `HORIZON`, what the reason shows, until: inf for none) and flags `f_off[j]:f_off[j +
    1]` (flagged at the contact's own time). A plan is `plan_off[2 * shape + asked]`
    onwards. `ev_revoke`: per row, the `n_revocations` revocation rules its reply revokes
    and those an opt-in lifts (bits q and `LIFTS + q`; one row of nothing without such
    rules). `fkey[q, i]`: row i's `per` key at row q of the rules keyed per row
    (`F_KEYED`), as a code (-1: none, which matches every key for frequency and cooldown
    rules); `fhit[q, i]`, at a rule's first row: whether the rule counts row i's contact
    (its outcome not excluded) or takes it, or the event at i, for the beginning of a
    silence; `ev_cool`: whether an event row begins one for any cooldown rule. `calendar`:
    the row of the hours tables that lays out each place's local days, for the rules that
    count them (-1: none). A customer at place `p`
    (`cust_place`) is bound by rule `r` where `rule_here[p * n_rules + r]` (a rule limited
    to regions binds where it may be)."""
    rule_kind, rule_f, counts, keys, shape_weight, shape_asked = tables[:6]
    cancels, content_hit, shape_channel, shape_purpose, shape_offer = tables[6:11]
    shape_unsubscribes, shape_declines = tables[11:]
    place_tab, n_zones, bound_off, bounds, day_off, span_base, span_begin, span_end = hours[:8]
    day_first = borrowed(hours[8])
    # The arguments borrowed (see `borrowed`): the caller holds them throughout.
    starts = borrowed(starts)
    skip = borrowed(skip)
    ts = borrowed(ts)
    is_contact = borrowed(is_contact)
    shape = borrowed(shape)
    unanswered = borrowed(unanswered)
    known = borrowed(known)
    engaged = borrowed(engaged)
    row = borrowed(row)
    ev_kind = borrowed(ev_kind)
    kind_activity = borrowed(kind_activity)
    kind_engagement = borrowed(kind_engagement)
    ev_sid = borrowed(ev_sid)
    kind_visit_engages = borrowed(kind_visit_engages)
    ev_signal = borrowed(ev_signal)
    ev_revoke = borrowed(ev_revoke)
    fkey = borrowed(fkey)
    fhit = borrowed(fhit)
    ev_cool = borrowed(ev_cool)
    signals = borrowed(signals)
    signal_time = borrowed(signal_time)
    signal = borrowed(signal)
    trigger_at = borrowed(trigger_at)
    content = borrowed(content)
    shape_trigger = borrowed(shape_trigger)
    plan_off = borrowed(plan_off)
    plan_rule = borrowed(plan_rule)
    plan_mode = borrowed(plan_mode)
    timeless = borrowed(timeless)
    cust_place = borrowed(cust_place)
    rule_here = borrowed(rule_here)
    out_verdict = borrowed(out_verdict)
    out_not_before = borrowed(out_not_before)
    out_logged = borrowed(out_logged)
    out_replayed = borrowed(out_replayed)
    r_off = borrowed(r_off)
    r_rule = borrowed(r_rule)
    r_value = borrowed(r_value)
    r_until = borrowed(r_until)
    r_aux = borrowed(r_aux)
    f_off = borrowed(f_off)
    f_rule = borrowed(f_rule)
    rule_kind = borrowed(rule_kind)
    rule_f = borrowed(rule_f)
    counts = borrowed(counts)
    keys = borrowed(keys)
    shape_weight = borrowed(shape_weight)
    shape_asked = borrowed(shape_asked)
    cancels = borrowed(cancels)
    content_hit = borrowed(content_hit)
    shape_channel = borrowed(shape_channel)
    shape_purpose = borrowed(shape_purpose)
    shape_offer = borrowed(shape_offer)
    shape_unsubscribes = borrowed(shape_unsubscribes)
    shape_declines = borrowed(shape_declines)
    place_tab = borrowed(place_tab)
    n_zones = borrowed(n_zones)
    bound_off = borrowed(bound_off)
    bounds = borrowed(bounds)
    day_off = borrowed(day_off)
    span_base = borrowed(span_base)
    span_begin = borrowed(span_begin)
    span_end = borrowed(span_end)
    longest = 1
    for c in range(len(starts) - 1):
        longest = max(longest, starts[c + 1] - starts[c])
    own_l_ts = np.empty(longest)
    l_ts = borrowed(own_l_ts)
    own_l_shape = np.empty(longest, dtype=np.int32)
    l_shape = borrowed(own_l_shape)
    own_l_unanswered = np.empty(longest, dtype=np.bool_)
    l_unanswered = borrowed(own_l_unanswered)
    own_l_known = np.empty(longest, dtype=np.bool_)
    l_known = borrowed(own_l_known)
    own_l_row = np.empty(longest, dtype=np.int64)
    l_row = borrowed(own_l_row)
    # Each ledger contact's row in the slice (where its `fkey` is).
    own_l_at = np.empty(longest, dtype=np.int64)
    l_at = borrowed(own_l_at)
    own_last_time = np.empty(max(n_kinds, 1))
    last_time = borrowed(own_last_time)
    own_facts = np.empty(8)
    facts = borrowed(own_facts)
    own_visits = np.empty((longest, 6))
    visits = borrowed(own_visits)
    own_visit_keys = np.empty(longest, dtype=np.int64)
    visit_keys = borrowed(own_visit_keys)
    own_optouts = np.empty((longest + 1, 4))
    optouts = borrowed(own_optouts)
    own_declines = np.empty((longest + 1, 2))
    declines = borrowed(own_declines)
    own_l_declined = np.empty(longest, dtype=np.bool_)
    l_declined = borrowed(own_l_declined)
    # Per revocation rule, the row (in the slice) of the reply in force that revoked
    # consent (-1: none), as `RevocationRule.revoked` finds it.
    own_revoked_by = np.empty(max(n_revocations, 1), dtype=np.int64)
    revoked_by = borrowed(own_revoked_by)
    # The customer's events that begin a silence (their rows), in the ledger's order
    # (`ev_cool` is one row of nothing without cooldown rules).
    cooling = len(ev_cool) == len(ts)
    own_cool_at = np.empty(longest, dtype=np.int64)
    cool_at = borrowed(own_cool_at)
    own_aux = np.full(1, math.nan)
    aux = borrowed(own_aux)
    n_rules = len(rule_kind)
    # What each rule drew from the ledger (see `check`): times, weights, how many, their
    # sum, and the ledger's version and the `per` key it was drawn for.
    own_held_ts = np.empty((n_rules, longest + 1))
    held_ts = borrowed(own_held_ts)
    own_held_w = np.empty((n_rules, longest + 1))
    held_w = borrowed(own_held_w)
    own_held_n = np.zeros(n_rules, dtype=np.int64)
    held_n = borrowed(own_held_n)
    own_held_total = np.zeros(n_rules)
    held_total = borrowed(own_held_total)
    own_held_version = np.full(n_rules, -1, dtype=np.int64)
    held_version = borrowed(own_held_version)
    own_held_key = np.full(n_rules, -1, dtype=np.int64)
    held_key = borrowed(own_held_key)
    version = 0  # of the ledger: one more for each customer, and each contact it takes in

    # An inner function, which numba writes out where it is called: the arrays it reads
    # are this function's own (borrowed), as are those of the helpers it calls, which
    # numba writes out in place too (`inline="always"`: the kernel ~17% quicker than
    # calling them, for a compile of ~35 s instead of ~19).
    def check(
        r: int,
        s: int,
        t: float,
        asked: bool,
        trigger_ts: float,
        content: int,
        place: int,
        pos: int,
        m: int,
        ns: int,
        no: int,
        nd: int,
        nc: int,
        version: int,
    ) -> tuple[float, float]:
        """Rule `r`'s `check` at `t` for a proposal of shape `s`; and what its reason shows
        (pressure: the pressure at `t`; content: the index of the content; unanswered: the
        streak; hours: `t`; frequency: how many it counts up to `t`, with the key in
        `aux`; else nan). An answer of nan: the engine must fold this customer. `pos`: the
        proposal's row in the slice.

        `m`, `ns`, `no`, `nd` and `nc`: how many contacts, visits, opt-outs, declines and
        events that begin a silence the customer holds; `version`: the ledger's.

        What a cap, gap or pressure rule draws from the ledger (the times it counts, the
        weighed contacts and their sum) is drawn once per version of the ledger (and `per`
        key) and kept in `held_*`: the search asks the rules again and again of one ledger, and
        a contact deferred or denied leaves it as it was."""
        aux[0] = math.nan
        kind = rule_kind[r]
        if kind == PRESSURE:
            hl = rule_f[r, F_HALF_LIFE]
            buf, buf_w = held_ts[r], held_w[r]
            if held_version[r] != version:
                n = terms(
                    l_ts,
                    l_shape,
                    l_unanswered,
                    m,
                    shape_weight,
                    shape_asked,
                    rule_f[r, F_FACTOR],
                    buf,
                    buf_w,
                )
                held_n[r] = n
                held_total[r] = summed(buf, buf_w, n, hl) if n else 0.0
                held_version[r] = version
            n, total = held_n[r], held_total[r]
            w = 0.0 if asked else shape_weight[s]
            u = pressure_check(t, w, rule_f[r, F_BUDGET], hl, buf, buf_w, n, total)
            return u, pressure_at(buf, buf_w, n, total, hl, t)
        if kind in (CAP, GAP):
            buf = held_ts[r]
            q = int(rule_f[r, F_KEYED])
            key = key_of(r, q, s, pos, keys, fkey)
            if held_version[r] != version or held_key[r] != key:
                held_n[r] = counted(r, q, s, pos, l_ts, l_shape, l_at, m, counts, keys, fkey, buf)
                held_version[r] = version
                held_key[r] = key
            n = held_n[r]
            if kind == CAP:
                if rule_f[r, F_BUDGET] == 1.0:
                    # `CapRule._check_session`: counted contacts in the visit live at t.
                    k = session_at(visits, ns, t) if n else -1
                    if k < 0:
                        return t, math.nan
                    inside = np.searchsorted(buf[:n], t, side="right") - np.searchsorted(
                        buf[:n], visits[k, V_START], side="left"
                    )
                    return (NEVER if inside >= rule_f[r, F_COUNT] else t), math.nan
                period = int(rule_f[r, F_HALF_LIFE])
                if period:
                    return period_check(t, int(rule_f[r, F_COUNT]), period, buf, n,
                                        place_tab[calendar, place, 0], bound_off, bounds,
                                        day_first), math.nan  # fmt: skip
                return cap_check(t, int(rule_f[r, F_COUNT]), rule_f[r, F_SPAN], buf, n), math.nan
            return gap_check(t, rule_f[r, F_SPAN], buf, n), math.nan
        if kind == FREQUENCY:
            # `FrequencyRule.check`: a contact the customer asked for passes where the rule
            # exempts them; the contacts it counts match the key strictly (a contact or
            # proposal without one matches every key).
            exempting = rule_f[r, F_BUDGET] == 1.0
            consent = int(rule_f[r, F_CONSENT])
            # The place's calendar, one table per zone (none laid out for a rolling window
            # without consent days, which reads none: the first row stands in).
            tables = place_tab[calendar, place] if calendar >= 0 else place_tab[0, 0]
            if asked and exempting:
                if not consent:
                    return t, math.nan
                end = days_after(trigger_ts, consent, False, tables, n_zones[place], bound_off,
                                 bounds)  # fmt: skip
                if math.isnan(end):
                    return end, math.nan
                if trigger_ts <= t < end:
                    return t, math.nan
            q, nk = int(rule_f[r, F_KEYED]), int(rule_f[r, F_KEYS])
            # What the counted contacts are drawn for: the one key's value, else the
            # proposal itself (whose keys, several, the search asks about again and again).
            key = fkey[q, pos] if nk == 1 else (-1 if nk == 0 else -2 - pos)
            buf = held_ts[r]
            if held_version[r] != version or held_key[r] != key:
                n = 0
                for e in range(m):
                    a = l_at[e]
                    if not (counts[r, l_shape[e]] and fhit[q, a]):
                        continue
                    if not keys_match(fkey, q, nk, pos, a):
                        continue
                    if exempting and consent and shape_asked[l_shape[e]]:
                        # Asked for within `consent_days` of the request: not counted.
                        request = trigger_at[a]
                        if not math.isnan(request):
                            end = days_after(request, consent, False, tables, n_zones[place],
                                             bound_off, bounds)  # fmt: skip
                            if math.isnan(end):
                                return end, math.nan
                            if request <= l_ts[e] < end:
                                continue
                    buf[n] = l_ts[e]
                    n += 1
                held_n[r] = n
                held_version[r] = version
                held_key[r] = key
            n = held_n[r]
            count = int(rule_f[r, F_COUNT])
            span = rule_f[r, F_HALF_LIFE]  # calendar days (0: a rolling window)
            if span:
                u = calendar_check(t, count, int(span), buf, n, tables, n_zones[place],
                                   bound_off, bounds, held_w[r])  # fmt: skip
                if not u > t:  # allowed, or nan
                    return u, math.nan
                inside = calendar_inside(t, int(span), buf, n, tables[0], bound_off, bounds)
            else:
                window = rule_f[r, F_SPAN]
                u = cap_check(t, count, window, buf, n)
                if u == t:
                    return t, math.nan
                inside = np.searchsorted(buf[:n], t, side="right") - np.searchsorted(
                    buf[:n], t - window, side="right"
                )
            aux[0] = pos  # whose keys the reason names
            return u, float(inside)
        if kind == COOLDOWN:
            # `CooldownRule.check`: silent until the latest end of a silence begun by a
            # contact it counts (in the ledger's order) or an event (in theirs), with a
            # key that matches strictly, after the customer's request where it exempts it.
            q, nk = int(rule_f[r, F_KEYED]), int(rule_f[r, F_KEYS])
            request = -math.inf
            offset = int(rule_f[r, F_COUNT])
            tables = place_tab[calendar, place]
            if asked and rule_f[r, F_BUDGET] == 1.0:
                request = trigger_ts
                consent = int(rule_f[r, F_CONSENT])
                if consent:
                    end = days_after(trigger_ts, consent, False, tables, n_zones[place],
                                     bound_off, bounds)  # fmt: skip
                    if math.isnan(end):
                        return end, math.nan
                    if not trigger_ts <= t < end:
                        request = -math.inf
            latest, last = -math.inf, math.nan
            for e in range(m + nc):
                a = l_at[e] if e < m else cool_at[e - m]
                if not fhit[q, a] or (e < m and not counts[r, l_shape[e]]):
                    continue
                if keys_match(fkey, q, nk, pos, a) and ts[a] > request:
                    end = days_after(ts[a], offset, True, tables, n_zones[place], bound_off,
                                     bounds)  # fmt: skip
                    if math.isnan(end):
                        return end, math.nan
                    if end > latest:
                        latest, last = end, ts[a]
            if latest > t:
                aux[0] = pos  # whose keys the reason names
                return latest, last
            return t, math.nan
        if kind == ACTIVITY:
            return activity_check(t, rule_f[r, F_SPAN], rule_f[r, F_COUNT] == 1.0, facts), math.nan
        if kind == TRIGGER:
            if math.isnan(trigger_ts):
                return t, math.nan  # not a triggered proposal
            return trigger_check(t, trigger_ts, rule_f[r, F_SPAN], cancels[r], last_time), math.nan
        if kind == UNANSWERED:
            n, last = streak(
                r, int(rule_f[r, F_KEYED]), s, pos, l_ts, l_shape, l_at, l_unanswered, l_known, m,
                counts, keys, fkey, facts[LAST_ENGAGEMENT],
            )  # fmt: skip
            if n >= rule_f[r, F_BUDGET]:
                return NEVER, float(n)
            if n >= rule_f[r, F_COUNT] and not math.isnan(last):
                wait = rule_f[r, F_SPAN] * 2.0 ** (n - rule_f[r, F_COUNT] + 1)
                if t < last + wait:
                    return last + wait, float(n)
            return t, float(n)
        if kind == SNOOZE:
            until = facts[SNOOZE_UNTIL]
            if not math.isnan(until) and t < until:
                return until, until
            return t, math.nan
        if kind == CALLBACK:
            when = callback_pending(facts, l_ts, l_shape, m, shape_channel, int(rule_f[r, F_COUNT]))
            if not math.isnan(when) and t < when:
                return when, when
            return t, math.nan
        if kind == CONSENT:
            # `counts` holds, for a consent rule, whether the shape's purpose is exempt from a
            # global opt-out; `keys`, which of the consent keys it requires an opt-in for
            # speaks for the shape (one more than its index; 0: none), which a replay's
            # profile, holding no consent, never records: shown as minus that.
            u, value = consent_check(t, shape_channel[s], shape_purpose[s], counts[r, s],
                                     optouts, no)  # fmt: skip
            if u == t and keys[r, s] > 0:
                return NEVER, -float(keys[r, s])
            return u, value
        if kind == DECLINE:
            return decline_check(
                t, rule_f[r, F_SPAN], rule_f[r, F_COUNT] == 1.0, shape_offer[s], declines, nd,
                l_ts, l_shape, l_declined, m, shape_offer, aux,
            )  # fmt: skip
        if kind == SESSION:
            condition = int(rule_f[r, F_COUNT])
            return session_check(t, condition, rule_f[r, F_SPAN], visits, ns, facts), math.nan
        if kind == HOURS:
            return hours_check(t, int(rule_f[r, F_COUNT]), place, place_tab, n_zones, bound_off,
                               bounds, day_off, span_base, span_begin, span_end), t  # fmt: skip
        if kind == CONTENT:
            if content >= 0 and content_hit[int(rule_f[r, F_COUNT]), content]:
                return NEVER, float(content)
            return t, math.nan
        if kind == REVOCATION:
            by = revoked_by[int(rule_f[r, F_COUNT])]
            if by >= 0:
                return NEVER, float(by)
            return t, math.nan
        return t, math.nan

    def reason(nr: int, r: int, aux_value: float, value: float, until: float) -> int:
        """The contact's next reason (rule `r` or `HORIZON`) as the `nr`-th; the next index."""
        r_rule[nr] = r
        r_aux[nr] = aux_value
        r_value[nr] = value
        r_until[nr] = until
        return nr + 1

    own_b_aux = np.empty(n_rules)
    b_aux = borrowed(own_b_aux)
    own_b_rule = np.empty(n_rules, dtype=np.int32)
    b_rule = borrowed(own_b_rule)
    own_b_u = np.empty(n_rules)
    b_u = borrowed(own_b_u)
    own_b_value = np.empty(n_rules)
    b_value = borrowed(own_b_value)
    own_b_deny = np.empty(n_rules, dtype=np.bool_)
    b_deny = borrowed(own_b_deny)
    own_used = np.zeros(n_rules, dtype=np.bool_)
    used = borrowed(own_used)
    j = 0  # contacts so far
    nr = 0  # reasons so far
    nf = 0  # flags so far
    r_off[0] = 0
    f_off[0] = 0
    for c in range(len(starts) - 1):
        if skip[c]:
            j = hand_back(
                starts[c], starts[c + 1], is_contact, out_verdict, r_off, f_off, j, nr, nf
            )
            continue
        m = 0
        version += 1
        last_time[:] = -math.inf
        facts[:] = -math.inf
        facts[SNOOZE_UNTIL:] = math.nan
        place = cust_place[c]
        revoked_by[:] = -1
        # The customer's place's row of `rule_here`: which rules bind where it may be.
        here = place * n_rules
        ns, current = 0, -1
        no, nd, nc = 0, 0, 0
        # The last opt-out (or opt-in) and decline folded: an outcome's signal at the same
        # instant would fold in the ledger's order for ties, which the kernel does not keep.
        last_optout, last_decline = -math.inf, -math.inf
        # Where this customer's output begins: a customer the kernel cannot finish (an
        # answer of nan) is handed back whole, as one it skipped.
        j0, nr0, nf0 = j, nr, nf
        bailed = False
        logged_v, logged_t = 0.0, 0.0
        replayed_v, replayed_t = 0.0, 0.0
        for i in range(starts[c], starts[c + 1]):
            if not is_contact[i]:
                k = ev_kind[i]
                if k >= 0:
                    last_time[k] = ts[i]
                    if kind_activity[k]:
                        facts[LAST_ACTIVITY] = ts[i]
                    if kind_engagement[k]:
                        facts[LAST_ENGAGEMENT] = ts[i]
                    if k == checkout_kind:
                        facts[LAST_CHECKOUT] = ts[i]
                    elif k == order_kind:
                        facts[LAST_ORDER] = ts[i]
                    g = ev_signal[i]
                    what = signals[g, 0] if g >= 0 else 0
                    if what in (SUPPRESSION, RESUBSCRIPTION):
                        last_optout = ts[i]
                        if what == SUPPRESSION:
                            no = opt_out(optouts, no, signals[g, 1], signals[g, 2],
                                         signals[g, 3], ts[i])  # fmt: skip
                        else:
                            no = opt_in(optouts, no, signals[g, 1], signals[g, 2])
                    elif what == SNOOZED:
                        facts[SNOOZE_UNTIL] = signal_time[g]
                    elif what == UNSNOOZED:
                        facts[SNOOZE_UNTIL] = math.nan
                    elif what == CALL_BACK:
                        facts[CALLBACK_ASKED] = ts[i]
                        facts[CALLBACK_AT] = signal_time[g]
                        facts[CALLBACK_CHANNEL] = signals[g, 1]
                    elif what == NO_CALL_BACK:
                        facts[CALLBACK_ASKED:] = math.nan
                    elif what == DECLINED:
                        last_decline = ts[i]
                        declines[nd, D_TS] = ts[i]
                        declines[nd, D_OFFER] = signals[g, 3]
                        nd += 1
                    if cooling and ev_cool[i]:
                        cool_at[nc] = i
                        nc += 1
                    if n_revocations:
                        bits = ev_revoke[i]
                        if bits:
                            for q in range(n_revocations):
                                if (bits >> q) & 1:
                                    revoked_by[q] = i
                                elif (bits >> (LIFTS + q)) & 1:
                                    revoked_by[q] = -1
                    if track_visits and (kind_activity[k] or k == ended_kind):
                        ns, current = sessionize(
                            visits, visit_keys, ns, current, ts[i], ev_sid[i], k == started_kind,
                            k == ended_kind, kind_visit_engages[k], k == dismissed_kind,
                            k == checkout_kind, k == order_kind,
                        )  # fmt: skip
                continue
            s = shape[i]
            t = ts[i]
            trigger_kind = shape_trigger[s]
            # `Context.trigger_ts`: the trigger's own time, else its last event, else now.
            trigger_ts = math.nan
            if trigger_kind != -2:
                trigger_ts = trigger_at[i]
                if math.isnan(trigger_ts):
                    trigger_ts = last_time[trigger_kind] if trigger_kind >= 0 else -math.inf
                    if trigger_ts == -math.inf:
                        trigger_ts = t
            asked = shape_asked[s] and trigger_kind >= 0 and last_time[trigger_kind] > -math.inf
            lo = plan_off[2 * s + (1 if asked else 0)]
            hi = plan_off[2 * s + (1 if asked else 0) + 1]
            # Flags first, then the rules that decide (`_decide`).
            nb = 0
            denying = False
            for flagging in (True, False):
                for k in range(lo, hi):
                    if (plan_mode[k] == FLAG) != flagging:
                        continue
                    r = plan_rule[k]
                    if not rule_here[here + r]:
                        continue
                    u, value = check(r, s, t, asked, trigger_ts, content[i], place, i, m, ns, no,
                                     nd, nc, version)  # fmt: skip
                    if math.isnan(u):
                        bailed = True
                        break
                    if u <= t:
                        continue
                    if flagging:
                        f_rule[nf] = r
                        nf += 1
                        continue
                    b_aux[nb] = aux[0]
                    b_rule[nb] = r
                    b_u[nb] = u
                    b_value[nb] = value
                    b_deny[nb] = u == NEVER or plan_mode[k] == DENY
                    denying = denying or b_deny[nb]
                    nb += 1
                if bailed:
                    break
            if bailed:
                break
            not_before = -1
            if nb == 0:
                verdict = ALLOW
            elif denying:
                verdict = DENIED
                # Denying rules first, then the others, each in policy order.
                for first in (True, False):
                    for b in range(nb):
                        if b_deny[b] == first:
                            nr = reason(nr, b_rule[b], b_aux[b], b_value[b], b_u[b])
            else:
                # `_search`: round and round the rules until all in a row allow one instant.
                used[:] = False
                u = b_u[0]
                for b in range(nb):
                    nr = reason(nr, b_rule[b], b_aux[b], b_value[b], b_u[b])
                    used[b_rule[b]] = True
                    u = max(u, b_u[b])
                limit = t + horizon
                searching = 0
                for k in range(lo, hi):
                    r = plan_rule[k]
                    if plan_mode[k] != FLAG and not timeless[r] and rule_here[here + r]:
                        searching += 1
                allowing = 0
                found = False
                for _ in range(MAX_STEPS):
                    if u > limit:
                        break
                    for k in range(lo, hi):
                        r = plan_rule[k]
                        if plan_mode[k] == FLAG or timeless[r] or not rule_here[here + r]:
                            continue
                        v, value = check(r, s, u, asked, trigger_ts, content[i], place, i, m,
                                         ns, no, nd, nc, version)  # fmt: skip
                        if math.isnan(v):
                            bailed = True
                            break
                        if v > u:
                            if not used[r]:
                                used[r] = True
                                nr = reason(nr, r, aux[0], value, v)
                            u = v
                            allowing = 0
                            if u > limit:
                                break
                        else:
                            allowing += 1
                            if allowing == searching:
                                grid = on_grid(u)
                                if grid > u:
                                    u = grid
                                    allowing = 0
                                    if u > limit:
                                        break
                                    continue
                                found = True
                                break
                    if found or bailed:
                        break
                if bailed:
                    break
                if found:
                    verdict = DEFERRED
                    not_before = micros(u)
                else:
                    verdict = DENIED
                    nr = reason(nr, HORIZON, math.nan, math.nan, NEVER)
            # The contact as it happened, on the logged gauge (`PressureGauge.add`).
            weight = 0.0
            if not shape_asked[s]:
                weight = shape_weight[s] * gauge_factor if unanswered[i] else shape_weight[s]
            logged_v = logged_v * math.exp2(-(t - logged_t) / gauge_hl) if logged_v else 0.0
            if not shape_asked[s]:
                logged_v += weight
            logged_t = t
            if verdict == ALLOW:
                # Into the ledger, as `CustomerState.add_ledger_contact` orders it.
                at = m
                while at > 0 and (
                    l_ts[at - 1] > t or (l_ts[at - 1] == t and not id_before(l_row[at - 1], row[i]))
                ):
                    at -= 1
                for q in range(m, at, -1):
                    l_ts[q] = l_ts[q - 1]
                    l_shape[q] = l_shape[q - 1]
                    l_unanswered[q] = l_unanswered[q - 1]
                    l_known[q] = l_known[q - 1]
                    l_declined[q] = l_declined[q - 1]
                    l_row[q] = l_row[q - 1]
                    l_at[q] = l_at[q - 1]
                l_ts[at] = t
                l_shape[at] = s
                l_unanswered[at] = unanswered[i]
                l_known[at] = known[i]
                l_declined[at] = signal[i] == DECLINED
                l_row[at] = row[i]
                l_at[at] = i
                m += 1
                version += 1
                if at == m - 1:
                    # Taken in last, as most are: what a rule drew from the ledger for the
                    # version before is what it would draw again, this contact added at
                    # the end (if it counts, and for the `per` key drawn for: the one of
                    # this contact, which the rule was just asked about). 10M rows of
                    # courtesy: the kernel ~11% quicker.
                    for r in range(n_rules):
                        if held_version[r] != version - 1:
                            continue
                        if rule_kind[r] == CAP or rule_kind[r] == GAP:
                            q = int(rule_f[r, F_KEYED])
                            if counts[r, s] and key_of(r, q, s, i, keys, fkey) == held_key[r]:
                                held_ts[r, held_n[r]] = t
                                held_n[r] += 1
                            held_version[r] = version
                        elif rule_kind[r] == PRESSURE:
                            # `terms` of the longer ledger; the sum worked out again whole,
                            # as the engine does, to the last bit.
                            if not shape_asked[s]:
                                weighed = shape_weight[s]
                                if unanswered[i]:
                                    weighed = weighed * rule_f[r, F_FACTOR]
                                if weighed > 0:
                                    held_ts[r, held_n[r]] = t
                                    held_w[r, held_n[r]] = weighed
                                    held_n[r] += 1
                            if held_n[r]:
                                held_total[r] = summed(
                                    held_ts[r], held_w[r], held_n[r], rule_f[r, F_HALF_LIFE]
                                )
                            held_version[r] = version
                if engaged[i]:
                    facts[LAST_ENGAGEMENT] = max(facts[LAST_ENGAGEMENT], t)
                # The signal its outcome also is (`model.outcome_signal`), at its time.
                if signal[i] == DECLINED:
                    if t == last_decline:
                        bailed = True
                        break
                    last_decline = t
                    declines[nd, D_TS] = t
                    declines[nd, D_OFFER] = shape_declines[s]
                    nd += 1
                elif signal[i] != 0:
                    if t == last_optout:
                        bailed = True
                        break
                    last_optout = t
                    purpose = shape_unsubscribes[s] if signal[i] == UNSUBSCRIBED else -1
                    how = 1 if signal[i] == UNSUBSCRIBED else 2
                    no = opt_out(optouts, no, shape_channel[s], purpose, how, t)
                replayed_v = (
                    replayed_v * math.exp2(-(t - replayed_t) / gauge_hl) if replayed_v else 0.0
                )
                if not shape_asked[s]:
                    replayed_v += weight
                replayed_t = t
                out_replayed[j] = replayed_v
            else:
                out_replayed[j] = (
                    replayed_v * math.exp2(-(t - replayed_t) / gauge_hl) if replayed_v else 0.0
                )
            out_verdict[j] = verdict
            out_not_before[j] = not_before
            out_logged[j] = logged_v
            j += 1
            r_off[j] = nr
            f_off[j] = nf
        if bailed:
            nr, nf = nr0, nf0
            j = hand_back(
                starts[c], starts[c + 1], is_contact, out_verdict, r_off, f_off, j0, nr, nf
            )
    # What `fold` made, kept to here: its borrowed twins were used up to here.
    kept(own_l_ts)
    kept(own_l_shape)
    kept(own_l_unanswered)
    kept(own_l_known)
    kept(own_l_row)
    kept(own_l_at)
    kept(own_last_time)
    kept(own_facts)
    kept(own_visits)
    kept(own_visit_keys)
    kept(own_optouts)
    kept(own_declines)
    kept(own_l_declined)
    kept(own_revoked_by)
    kept(own_cool_at)
    kept(own_aux)
    kept(own_held_ts)
    kept(own_held_w)
    kept(own_held_n)
    kept(own_held_total)
    kept(own_held_version)
    kept(own_held_key)
    kept(own_b_aux)
    kept(own_b_rule)
    kept(own_b_u)
    kept(own_b_value)
    kept(own_b_deny)
    kept(own_used)
