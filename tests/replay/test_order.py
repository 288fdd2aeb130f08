"""The compiled passes of `tactful.replay.order` do what numpy's indexing does."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.replay.order import looked_up, renumbered, spread


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_spread_is_a_gather_then_a_scatter(data: st.DataObject) -> None:
    values = np.array(data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1)), np.int32)
    n = data.draw(st.integers(0, 30))
    places = data.draw(st.lists(st.integers(0, max(n - 1, 0)), unique=True, max_size=n))
    at = np.array(places if n else [], dtype=np.int64)
    src = np.array(
        [data.draw(st.integers(0, len(values) - 1)) for _ in places] if n else [], dtype=np.int64
    )
    fill = data.draw(st.integers(-1, 3))
    expected = np.full(n, fill, dtype=np.int32)
    expected[at] = values[src]
    out = np.full(n, fill, dtype=np.int32)
    spread(out, at, values, src)
    assert out.tolist() == expected.tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=1, max_size=8),
    st.lists(st.integers(-1, 7), max_size=40),
)
def test_looked_up_is_numpys_take_with_minus_one_the_last_entry(
    entries: list[int], picks: list[int]
) -> None:
    table = np.array(entries, dtype=np.int64)
    index = np.array([p if p < len(entries) else len(entries) - 1 for p in picks], dtype=np.int32)
    assert looked_up(table, index).tolist() == table[index].tolist()
    flags = table > 0
    assert looked_up(flags, index).tolist() == flags[index].tolist()
    # A read-only index (as Polars lends a column) is read alike.
    index.flags.writeable = False
    assert looked_up(table, index).tolist() == table[index].tolist()


def test_renumbered_numbers_values_by_their_order_among_those_present() -> None:
    places, used = renumbered(np.array([7, 2, 7, 0, 2], dtype=np.uint32), 9)
    assert used.tolist() == [0, 2, 7]
    assert places.tolist() == [2, 1, 2, 0, 1]
