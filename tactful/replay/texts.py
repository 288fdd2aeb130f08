"""The verdicts' reasons as JSON text, assembled in machine code (numba).

A replay of 10M rows words ~1M reasons. `tactful.replay.native._reasons` works out what
differs between them (each one's rule, what its message shows, its `until`) and the
pieces that do not (each rule's JSON head and message around what it shows, as
`json.dumps` writes them); `reason_lists` then writes each contact's list of reasons in
one pass over bytes, where joining them with Polars' string expressions took ~0.1 us a
row of the timeline.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tactful.replay.kernel import borrowed, civil, kept

#: Between a reason's message and its `until`.
_UNTIL = np.frombuffer(b'", "until": ', dtype=np.uint8)
_NULL = np.frombuffer(b"null", dtype=np.uint8)
_UTC = np.frombuffer(b'+00:00"', dtype=np.uint8)


@njit(cache=True, nogil=True)
def _iso_length(us: int) -> int:
    """Bytes of `_iso`'s text of `us`."""
    if us < 0:
        return 4  # null
    return 34 if us % 1_000_000 else 27


#: The two digits of each number below 100, at twice the number: "00", "01", ... "99".
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _pair(out: np.ndarray, at: int, value: int) -> int:
    out[at] = _PAIRS[2 * value]
    out[at + 1] = _PAIRS[2 * value + 1]
    return at + 2


@njit(cache=True, nogil=True, inline="always")
def _date(out: np.ndarray, at: int, year: int, month: int, day: int) -> int:
    """`YYYY-MM-DD` (a year of 0-9999, as `kernel.civil` gives them)."""
    _pair(out, at, year // 100)
    _pair(out, at + 2, year % 100)
    out[at + 4] = 45  # -
    _pair(out, at + 5, month)
    out[at + 7] = 45
    _pair(out, at + 8, day)
    return at + 10


@njit(cache=True, nogil=True, inline="always")
def _clock(out: np.ndarray, at: int, second: int) -> int:
    """`HH:MM:SS` of a second of the day."""
    at = _pair(out, at, second // 3600)
    out[at] = 58  # :
    at = _pair(out, at + 1, second // 60 % 60)
    out[at] = 58
    return _pair(out, at + 1, second % 60)


@njit(cache=True, nogil=True, inline="always")
def _micros(out: np.ndarray, at: int, fraction: int) -> int:
    """The six digits of a second's microseconds."""
    out[at] = 48 + fraction // 100_000
    at = _pair(out, at + 1, fraction // 1000 % 100)
    at = _pair(out, at, fraction // 10 % 100)
    out[at] = 48 + fraction % 10
    return at + 1


@njit(cache=True, nogil=True)
def _iso(out: np.ndarray, at: int, us: int) -> int:
    """`us` (epoch microseconds; negative: none) as `Reason.as_dict` writes an instant in
    JSON: `"2026-01-04T21:07:51.884291+00:00"` (no fraction when it is whole), or null."""
    if us < 0:
        out[at : at + 4] = _NULL
        return at + 4
    seconds, fraction = us // 1_000_000, us % 1_000_000
    days, second = seconds // 86400, seconds % 86400
    year, month, day = civil(days)
    out[at] = 34  # "
    at = _date(out, at + 1, year, month, day)
    out[at] = 84  # T
    at = _clock(out, at + 1, second)
    if fraction:
        out[at] = 46  # .
        at = _micros(out, at + 1, fraction)
    out[at : at + 7] = _UTC
    return at + 7


@njit(cache=True, nogil=True)
def _copy(out: np.ndarray, at: int, data: np.ndarray, lo: int, hi: int) -> int:
    out[at : at + hi - lo] = data[lo:hi]
    return at + hi - lo


@njit(cache=True, nogil=True)
def reason_lists(
    offsets: np.ndarray,
    codes: np.ndarray,
    until: np.ndarray,
    shown_offsets: np.ndarray,
    shown: np.ndarray,
    head_offsets: np.ndarray,
    heads: np.ndarray,
    first_piece: np.ndarray,
    piece_offsets: np.ndarray,
    pieces: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each contact's reasons `offsets[j]:offsets[j + 1]` as a JSON list: per reason, its
    code's head (`heads[head_offsets[c]:head_offsets[c + 1]]`, `{"rule": ..., "message":
    "`), its code's message pieces (`first_piece[c]:first_piece[c + 1]` of the pieces)
    with what it shows (`shown`, per reason) between each two, `", "until": `, its
    `until` (`_iso`) and `}`; reasons joined by `, `, the list in brackets. The text as
    Arrow lays it out: (offsets, bytes); a contact with no reasons gets empty text.

    Every array is used borrowed (`kernel.borrowed`): the copies into `out` (slices, and
    `out` handed to `_iso`) count no references (21 slices of the 10M-row
    log: 0.46 -> 0.37 CPU-seconds)."""
    offsets, codes, until = borrowed(offsets), borrowed(codes), borrowed(until)
    shown_offsets, shown = borrowed(shown_offsets), borrowed(shown)
    head_offsets, heads = borrowed(head_offsets), borrowed(heads)
    first_piece, piece_offsets, pieces = (
        borrowed(first_piece),
        borrowed(piece_offsets),
        borrowed(pieces),
    )
    n = len(offsets) - 1
    ends = np.zeros(n + 1, dtype=np.int64)
    for j in range(n):
        size = 0
        lo, hi = offsets[j], offsets[j + 1]
        if hi > lo:
            size = 2 + 2 * (hi - lo - 1)
            for k in range(lo, hi):
                c = codes[k]
                size += head_offsets[c + 1] - head_offsets[c]
                parts = first_piece[c + 1] - first_piece[c]
                size += piece_offsets[first_piece[c + 1]] - piece_offsets[first_piece[c]]
                size += (parts - 1) * (shown_offsets[k + 1] - shown_offsets[k])
                size += len(_UNTIL) + _iso_length(until[k]) + 1
        ends[j + 1] = ends[j] + size
    text = np.empty(ends[n], dtype=np.uint8)
    out = borrowed(text)
    for j in range(n):
        lo, hi = offsets[j], offsets[j + 1]
        if hi == lo:
            continue
        at = ends[j]
        out[at] = 91  # [
        at += 1
        for k in range(lo, hi):
            if k > lo:
                out[at] = 44  # ,
                out[at + 1] = 32
                at += 2
            c = codes[k]
            at = _copy(out, at, heads, head_offsets[c], head_offsets[c + 1])
            for q in range(first_piece[c], first_piece[c + 1]):
                if q > first_piece[c]:
                    at = _copy(out, at, shown, shown_offsets[k], shown_offsets[k + 1])
                at = _copy(out, at, pieces, piece_offsets[q], piece_offsets[q + 1])
            out[at : at + len(_UNTIL)] = _UNTIL
            at = _iso(out, at + len(_UNTIL), until[k])
            out[at] = 125  # }
            at += 1
        out[at] = 93  # ]
    kept(text)
    return ends, text


#: Days of instants up to which `csv_instants` makes a table of their dates (~180 years,
#: 720 KB).
_DAYS = 1 << 16


@njit(cache=True, nogil=True)
def csv_instants(us: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Each instant `us[i]` (epoch microseconds) where `given[i]`, as Polars' CSV writer
    writes a UTC datetime under `io.ISO_UTC` (chrono's `%Y-%m-%dT%H:%M:%S%.fZ`: no
    fraction on a whole second, three digits on a whole millisecond, else six), nothing
    where not given; as Arrow lays text out (offsets, bytes), and True. False (and
    nothing to use) where a year is outside 1-9999 (chrono writes a sign past 9999;
    `kernel.civil` counts days from 0000-03-01 on, as Python's dates begin in year 1).

    Each day's date from the first to the last is made once (`YYYY-MM-DDT`, a table of
    them: a replay's instants span months), the rest two digits at a time from a table:
    2.5M verdicts' `at` 42 ns an instant (57 where each date was made as the instants
    changed days, which a customer's contacts do from one to the next; chrono's took
    ~250). Instants spread over more than `_DAYS` days make each date as they go."""
    n = len(us)
    ends = np.empty(n + 1, dtype=np.int64)
    ends[0] = 0
    size = 0
    first = 1 << 62
    last = -(1 << 62)
    for i in range(n):
        if given[i]:
            fraction = us[i] % 1_000_000
            size += 20 if fraction == 0 else (24 if fraction % 1000 == 0 else 27)
            day = us[i] // 86_400_000_000
            first = min(first, day)
            last = max(last, day)
        ends[i + 1] = size
    out = np.empty(size, dtype=np.uint8)
    if size == 0:
        return ends, out, True
    for day in (first, last):
        year = civil(day)[0]
        if year < 1 or year > 9999:
            return ends, out, False
    tabled = last - first < _DAYS
    dates = np.empty(11 * (last - first + 1) if tabled else 11, dtype=np.uint8)
    if tabled:
        for day in range(first, last + 1):
            year, month, day_of = civil(day)
            at = _date(dates, 11 * (day - first), year, month, day_of)
            dates[at] = 84  # T
    made = np.int64(-(1 << 62))
    for i in range(n):
        if not given[i]:
            continue
        seconds = us[i] // 1_000_000
        fraction = us[i] - seconds * 1_000_000
        days = seconds // 86400
        second = seconds - days * 86400
        place = 11 * (days - first)
        if not tabled:
            place = 0
            if days != made:
                year, month, day_of = civil(days)
                _date(dates, 0, year, month, day_of)
                dates[10] = 84  # T
                made = days
        at = ends[i]
        for k in range(11):
            out[at + k] = dates[place + k]
        at = _clock(out, at + 11, second)
        if fraction:
            out[at] = 46  # .
            if fraction % 1000 == 0:
                out[at + 1] = 48 + fraction // 100_000
                at = _pair(out, at + 2, fraction // 1000 % 100)
            else:
                at = _micros(out, at + 1, fraction)
        out[at] = 90  # Z
    return ends, out, True
