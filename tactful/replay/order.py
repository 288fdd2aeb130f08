"""The timeline's order of a log's rows, compiled (numba): by customer, then by instant,
rows of equal keys in the order given; and the numbering of a log's values by their codes.

Sorting 10M rows by a key of customer and instant costs Polars ~1 s (a comparison sort
that cannot tell the log is nearly in order, then a gather of the keys). The rows are
bucketed by customer instead (a counting sort: one pass to count, one to place, stable),
and each customer's rows, already in time order within each file that a log is read
from, are put in order by merging their runs of rising instants: linear in the rows for
logs in time order or customer by customer, as systems export them, and a merge sort
for any other order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Codes (a categorical's, of Polars' one mapping for the whole process) up to which they
#: are tallied in tables of their own (`some_rows`, `renumbered`: 64-128 MB at most);
#: past that, Polars' own ways.
TALLIED = 1 << 24


@njit(cache=True, nogil=True)
def _merge(key: np.ndarray, idx: np.ndarray, lo: int, mid: int, hi: int, tk: np.ndarray,
           ti: np.ndarray) -> None:  # fmt: skip
    """Merge the sorted runs `lo:mid` and `mid:hi` of `key` (and `idx` alongside), the
    first run's rows first among equal keys."""
    n = hi - lo
    a, b, k = lo, mid, 0
    while a < mid and b < hi:
        if key[b] < key[a]:
            tk[k], ti[k] = key[b], idx[b]
            b += 1
        else:
            tk[k], ti[k] = key[a], idx[a]
            a += 1
        k += 1
    while a < mid:
        tk[k], ti[k] = key[a], idx[a]
        a += 1
        k += 1
    while b < hi:
        tk[k], ti[k] = key[b], idx[b]
        b += 1
        k += 1
    key[lo:hi] = tk[:n]
    idx[lo:hi] = ti[:n]


@njit(cache=True, nogil=True)
def _sort_runs(key: np.ndarray, idx: np.ndarray, lo: int, hi: int, runs: np.ndarray,
               tk: np.ndarray, ti: np.ndarray) -> None:  # fmt: skip
    """Stable sort of `key[lo:hi]` (and `idx` alongside) by merging its runs of rising
    keys, neighbours pairwise, until one is left."""
    r = 0
    runs[r] = lo
    for i in range(lo + 1, hi):
        if key[i] < key[i - 1]:
            r += 1
            runs[r] = i
    if r == 0:
        return
    r += 1
    runs[r] = hi
    while r > 1:
        j = 0
        for s in range(0, r - 1, 2):
            _merge(key, idx, runs[s], runs[s + 1], runs[s + 2], tk, ti)
            runs[j] = runs[s]
            j += 1
        if r % 2 == 1:
            runs[j] = runs[r - 1]
            j += 1
        runs[j] = hi
        r = j


@njit(cache=True, nogil=True)
def some_rows(code: np.ndarray, size: int) -> np.ndarray:
    """For each code below `size`, a row that has it (-1: none), without the row numbers
    of every row that `some[code] = np.arange(n)` would make first (10M rows: 80 MB)."""
    some = np.full(size, -1, dtype=np.int64)
    for i in range(len(code)):
        some[code[i]] = i
    return some


@njit(cache=True, nogil=True)
def renumbered(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the place of its value (each below `size`) among the values present, in
    their order; and those values. One pass to mark, one to look up: numpy's `bincount`
    and a fancy index made two arrays of 8-byte copies first (2.5M rows: ~20 -> ~5 ms)."""
    seen = np.zeros(size, dtype=np.bool_)
    for i in range(len(values)):
        seen[values[i]] = True
    table = np.empty(size, dtype=np.int32)
    k = 0
    for v in range(size):
        if seen[v]:
            table[v] = k
            k += 1
    used = np.empty(k, dtype=np.int64)
    for v in range(size):
        if seen[v]:
            used[table[v]] = v
    out = np.empty(len(values), dtype=np.int32)
    for i in range(len(values)):
        out[i] = table[values[i]]
    return out, used


@njit(cache=True, nogil=True)
def spread(out: np.ndarray, at: np.ndarray, values: np.ndarray, src: np.ndarray) -> None:
    """`out[at] = values[src]`, in one pass: numpy gathers into an array of its own, then
    scatters it (a 500,000-row slice's code column, 600K values from a 7.7M-row file:
    7.4 -> 3.3 ms)."""
    for k in range(len(at)):
        out[at[k]] = values[src[k]]


@njit(cache=True, nogil=True)
def looked_up(table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`table[index]` (an index of -1: the table's last entry), for a small table, where
    numpy's general gather takes ~3 ns a row (7.7M rows: 22 ms)."""
    out = np.empty(len(index), dtype=table.dtype)
    for i in range(len(index)):
        out[i] = table[index[i]]
    return out


@njit(cache=True, nogil=True)
def push_digit(key: np.ndarray, digit: np.ndarray, base: int) -> None:
    """`key = key * base + digit`, in place (numpy makes two temporary arrays of it)."""
    for i in range(len(key)):
        key[i] = key[i] * base + digit[i]


@njit(cache=True, nogil=True)
def timeline_order(code: np.ndarray, place: np.ndarray, instants: np.ndarray, customers: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The rows' order by customer (row i's is `place[code[i]]`, 0 to `customers` - 1),
    then by `instants`, rows of equal keys in the order given; the instants in that
    order; each row's customer in that order; and where each customer's rows begin in it
    (`starts[c]:starts[c + 1]`). Each row's customer looked up here, not first into an
    array of its own (10M rows: 0.1 s), and spread here, not by numpy's `repeat` (which
    holds the interpreter's lock: 0.06-0.08 s)."""
    n = len(code)
    starts = np.zeros(customers + 1, dtype=np.int64)
    for i in range(n):
        starts[place[code[i]] + 1] += 1
    for c in range(customers):
        starts[c + 1] += starts[c]
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    key = np.empty(n, dtype=np.int64)
    customer = np.empty(n, dtype=np.uint32)
    for i in range(n):
        c = place[code[i]]
        order[fill[c]] = i
        key[fill[c]] = instants[i]
        customer[fill[c]] = c
        fill[c] += 1
    longest = 0
    for c in range(customers):
        longest = max(longest, starts[c + 1] - starts[c])
    runs = np.empty(longest + 1, dtype=np.int64)
    tk = np.empty(longest, dtype=np.int64)
    ti = np.empty(longest, dtype=np.int64)
    for c in range(customers):
        _sort_runs(key, order, starts[c], starts[c + 1], runs, tk, ti)
    return order, key, customer, starts
