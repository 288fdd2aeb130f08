"""The reasons' JSON written in machine code (`tactful.replay.texts`) is what Python's
`json` and `datetime` write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.replay import texts

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: 9999-12-31T23:59:59.999999, the last instant a datetime holds.
LAST = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def _iso(us: int) -> str:
    out = np.zeros(40, dtype=np.uint8)
    end = texts._iso(out, 0, us)
    assert end == texts._iso_length(us)
    return out[:end].tobytes().decode()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(0, LAST),
        st.integers(0, LAST // 1_000_000).map(lambda s: s * 1_000_000),  # whole seconds
        st.sampled_from([0, 951782400 * 10**6, 4107542400 * 10**6 - 1, LAST]),  # 2000-02-29
    )
)
def test_an_instant_is_written_as_isoformat_in_json(us: int) -> None:
    when = EPOCH + timedelta(microseconds=us)
    assert _iso(us) == json.dumps(when.isoformat())


def test_no_instant_is_null() -> None:
    assert _iso(-1) == "null"


def _text(items: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode() for t in items]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in encoded])]).astype(np.int64)
    return offsets, np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 2), st.text(max_size=5), st.integers(-1, 2 * 10**15)),
            max_size=3,
        ),
        max_size=6,
    )
)
def test_each_contacts_reasons_are_a_json_list(
    contacts: list[list[tuple[int, str, int]]],
) -> None:
    """Reasons of three codes: no message pieces to fill, one place to show something,
    two places; what each shows, and its `until`, drawn at random."""
    heads = [
        '{"rule": "a", "message": "',
        '{"rule": "é", "message": "',
        '{"rule": "c", "message": "',
    ]
    pieces = [["plain"], ["shows ", "."], ["", " and ", "!"]]
    reasons = [r for c in contacts for r in c]
    offsets = np.concatenate([[0], np.cumsum([len(c) for c in contacts])]).astype(np.int64)
    shown = [json.dumps(s, ensure_ascii=False)[1:-1] for _, s, _ in reasons]
    first = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
    ends, data = texts.reason_lists(
        offsets,
        np.array([c for c, _, _ in reasons], dtype=np.int64),
        np.array([u for _, _, u in reasons], dtype=np.int64),
        *_text(shown),
        *_text(heads),
        first,
        *_text([p for ps in pieces for p in ps]),
    )
    for j, contact in enumerate(contacts):
        got = data[ends[j] : ends[j + 1]].tobytes().decode()
        if not contact:
            assert got == ""
            continue
        expected = []
        for code, what, until in contact:
            message = what.join(pieces[code])
            at = None if until < 0 else (EPOCH + timedelta(microseconds=until)).isoformat()
            rule = heads[code].split('"')[3]
            expected.append({"rule": rule, "message": message, "until": at})
        assert json.loads(got) == expected
        assert got == json.dumps(expected, ensure_ascii=False)


#: The first instant of year 1 (`datetime`'s first) and the last of 9999 bound what
#: `csv_instants` writes.
FIRST = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
INSTANT = st.one_of(
    st.integers(FIRST, LAST),
    st.integers(-(FIRST // -1_000_000), LAST // 1_000_000).map(lambda s: s * 1_000_000),
    st.integers(-(FIRST // -1000), LAST // 1000).map(lambda ms: ms * 1000),  # milliseconds
    st.sampled_from([0, -1, 1, 999, 1000, 999_999, 951782400 * 10**6, FIRST, LAST]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), INSTANT), max_size=40))
def test_instants_are_written_to_csv_as_polars_writes_them(values: list[int | None]) -> None:
    """`run.write_csv`'s instants (`texts.csv_instants`) are Polars' CSV of the datetimes
    under `ISO_UTC`, byte for byte: fractions of six digits, of three, none; before 1970;
    the first and last years; nulls."""
    import polars as pl

    from tactful.replay.io import ISO_UTC
    from tactful.replay.run import instants_text

    column = pl.Series("at", values, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    text = instants_text(column)
    assert text is not None
    expected = pl.DataFrame([column]).write_csv(datetime_format=ISO_UTC)
    assert pl.DataFrame([text]).write_csv() == expected


@pytest.mark.parametrize("year", [10000, 12345, 0, -1])
def test_instants_outside_years_1_to_9999_are_left_to_polars(year: int) -> None:
    """Years past 9999 chrono writes with a sign, and years before 1 `kernel.civil` does
    not count: `csv_instants` declines, and `write_csv` gives the column to Polars as it
    is."""
    import io

    import polars as pl

    from tactful.replay.io import ISO_UTC
    from tactful.replay.run import instants_text, write_csv

    days = (year - 1970) * 36525 // 100 + 180  # mid-year
    column = pl.Series("at", [0, days * 86_400_000_000, None], dtype=pl.Int64)
    column = column.cast(pl.Datetime("us", "UTC"))
    assert instants_text(column) is None
    frame = pl.DataFrame([column, pl.Series("n", [1, 2, 3])])
    sink = io.BytesIO()
    write_csv(frame, sink)
    assert sink.getvalue().decode() == frame.write_csv(datetime_format=ISO_UTC)
