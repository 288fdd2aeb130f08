"""Replay on this machine: the timeline cut into chunks of whole customers, folded by
several workers at once (one per core by default), verdicts handed on in timeline order
as the chunks come in (to be written while later chunks fold).

Where the replay kernel folds every policy (`tactful.replay.native`), the workers are
threads: the kernel runs without the interpreter's lock and Polars does its own work
outside it, so each thread builds the slice of the timeline it folds (`io.
TimelineBuilder`) and the whole timeline is never held. Otherwise they are processes,
each compiling the policies once from their text, since the engine is Python and would
hold the lock. A customer never spans two chunks, so no
state crosses a worker and nothing is cached across customers. A Rich progress bar
shows rows/s.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from tactful.policy.document import Policy
from tactful.replay.io import POLARS_TYPES, TimelineBuilder, customer_bounds
from tactful.replay.timeline import (
    TIMELINE_COLUMNS,
    VERDICT_CATEGORICAL,
    VERDICT_COLUMNS,
    fold_columns,
)

if TYPE_CHECKING:
    from tactful.replay import native

#: Rows per chunk sent to a worker process (whole customers, so a chunk may run a little
#: over).
CHUNK_ROWS = 50_000
#: Rows per chunk a worker thread folds: larger, since nothing is sent, and the fixed
#: cost of a chunk (Polars' calls, the kernel's tables, the lock each holds while in
#: Python) is then spread over more rows (10M rows of courtesy on 2 cores, the fold
#: alone: 7.1 s in chunks of 100,000, 5.8-6.6 s of 200,000, 5.1-5.2 s of 500,000,
#: 5.0-5.2 s of 1,000,000, 7.6 s of 2,000,000). Since the kernel's time halved (round
#: 18), the fixed cost weighs more: 800,000 folds in 3.03-3.22 s against 500,000's
#: 3.22-3.41 (four alternating pairs); 650,000 and 1,000,000 about as 800,000.
THREAD_CHUNK_ROWS = 800_000
#: Allocations between collections of the youngest generation while folding (Python's
#: default is 700): the fold makes millions of small objects that live no longer than a
#: customer's history, and few cycles; collecting them every 700 cost about 8% of the
#: fold's time (`bench/bench_replay.py`).
FOLD_GC_THRESHOLD = 100_000
VERDICT_SCHEMA = {
    name: pl.Categorical() if name in VERDICT_CATEGORICAL else POLARS_TYPES[kind]
    for name, kind in VERDICT_COLUMNS.items()
}

PolicySource = tuple[str, str]  # (text, file) as Policy.from_text takes them


def policy_source(policy: Policy) -> PolicySource:
    return policy.text, policy.file


def thread_chunk_rows(height: int, workers: int) -> int:
    """Rows per slice for `workers` threads folding `height` rows: about
    `THREAD_CHUNK_ROWS`, in a number of slices that the threads share evenly. 10M rows
    in 13 slices of 800,000 left the last one to one thread while the other waited
    (~0.3 s); in 14 of ~730,000 they finish together."""
    count = max(1, -(-height // THREAD_CHUNK_ROWS))
    count = -(-count // workers) * workers
    return max(1, -(-height // count))


def chunks(
    timeline: pl.DataFrame | TimelineBuilder, rows: int = CHUNK_ROWS
) -> Iterator[tuple[int, int]]:
    """(offset, length) slices of about `rows` rows that never split a customer."""
    n = timeline.height
    if n == 0:
        return
    # Row indices where a new customer starts.
    if isinstance(timeline, TimelineBuilder):
        starts = timeline.starts[:-1]
    else:
        starts = customer_bounds(timeline.get_column("customer_id"))[:-1]
    cut_at = np.searchsorted(starts, np.arange(rows, n, rows))
    offset = 0
    for idx in dict.fromkeys(cut_at.tolist()):
        if idx >= len(starts):
            break
        end = int(starts[idx])
        if end > offset:
            yield offset, end - offset
            offset = end
    if offset < n:
        yield offset, n - offset


class _PageSwitch:
    """numpy's switch for asking for huge pages, turned off while any replay folds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.folds = 0  # blocks of `small_pages` running, in any thread
        self.before = True  # the setting before the first of them

    @staticmethod
    def switch() -> Callable[[bool], bool] | None:
        """numpy's switch (it answers the setting it replaced); None without one."""
        for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # 2.x, 1.x
            try:
                module = importlib.import_module(name)
            except ImportError:  # pragma: no cover - numpy 1.x
                continue
            found: Callable[[bool], bool] | None = getattr(module, "_set_madvise_hugepage", None)
            return found
        return None  # pragma: no cover


_PAGES = _PageSwitch()


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy's large arrays left in the system's usual pages while the block runs (numpy
    asks for huge pages, `madvise(MADV_HUGEPAGE)`, for any array of 4 MB or more): on a
    machine where the kernel then compacts memory to find 2 MB pages, a replay's fold
    spent more time in the kernel than the page faults that huge pages save (10M rows:
    fold system time 1.23-1.47 -> 0.84-0.97 CPU-seconds, seven alternating pairs; the
    fold 3.66 -> 3.54 s on average). numpy's setting is the process's: it is put back
    when the last such block (of any thread) ends."""
    switch = _PAGES.switch()
    if switch is None:  # pragma: no cover - a numpy without it
        yield
        return
    with _PAGES.lock:
        if not _PAGES.folds:
            _PAGES.before = switch(False)
        _PAGES.folds += 1
    try:
        yield
    finally:
        with _PAGES.lock:
            _PAGES.folds -= 1
            if not _PAGES.folds:
                switch(_PAGES.before)


#: `mallopt`'s parameters (glibc's malloc.h) and what `keep_freed_memory` sets them to:
#: blocks up to 32 MB (glibc's largest) from the heap, not each from the system; up to
#: 1 GB left free on top of the heap, not handed back; 64 MB asked for beyond a request.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
KEPT_MEMORY = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Have the C library's allocator keep memory a replay frees for its next arrays,
    rather than hand it back to the system (True where it took the settings: glibc).

    numpy's and numba's arrays come from glibc's `malloc`, which by default gives each
    large block its own pages from the system and hands them back when the block is
    freed; a replay makes and drops arrays of megabytes per slice, and each new one
    faults its pages in again, zeroed. On the virtual machines we measure on, where freed
    pages go back to the host (free page reporting), such a fault costs microseconds
    (10M rows of courtesy: ~800,000 faults, ~0.7-1.7 CPU-seconds of system time in the
    fold). Kept: ~5% fewer faults, the fold's system time 0.17 s less on average (five
    alternating pairs: -0.01 to 0.46 s). The settings are the process's and stay:
    `tactful replay` makes them as it starts, not the library."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - a system without a C library to find
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc (musl, macOS)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all([mallopt(parameter, value) == 1 for parameter, value in KEPT_MEMORY])


@contextmanager
def few_collections() -> Iterator[None]:
    """The youngest generation collected every `FOLD_GC_THRESHOLD` allocations while the
    block runs, and what the process held before it left out of every collection
    (`gc.freeze`): a fold of 10M rows still ran one collection of the oldest generation,
    which went through the ~150,000 objects of the libraries and the log (72 ms, holding
    the interpreter's lock, the fold's threads waiting; frozen: 6 ms for all five
    collections). The thresholds as they were, and those objects back in the oldest
    generation, afterwards. A process that froze objects itself is left as it is: nothing
    more frozen (Python cannot unfreeze only what the block froze, so what it froze would
    stay frozen for good), and what it froze stays so."""
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    if not frozen:
        gc.freeze()
    gc.set_threshold(FOLD_GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        if not frozen:
            gc.unfreeze()


def fold_frame(
    frame: pl.DataFrame,
    policies: Sequence[Policy],
    *,
    codes: native.LogCodes | None = None,
    whole: Callable[[], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """Fold a timeline slice of whole customers; the verdicts as a frame of `VERDICT_SCHEMA`.
    A policy the replay kernel covers is folded by it (`tactful.replay.native`), any other
    by the engine. With `codes` (the kernel's policies only), the slice is coded
    (`native.fold_frame`)."""
    from tactful.replay import native

    kernel = [native.enabled(p) for p in policies]
    parts = [
        native.fold_frame(frame, p, run, codes=codes, whole=whole)
        for run, p in enumerate(policies)
        if kernel[run]
    ]
    runs = [run for run in range(len(policies)) if not kernel[run]]
    if runs:
        columns = {name: frame.get_column(name).to_list() for name in TIMELINE_COLUMNS}
        folded = pl.DataFrame(
            fold_columns(columns, [policies[r] for r in runs]), schema=VERDICT_SCHEMA
        )
        if runs != list(range(len(runs))):
            folded = folded.with_columns(pl.col("run").replace_strict(list(range(len(runs))), runs))
        parts.append(folded)
    return parts[0] if len(parts) == 1 else pl.concat(parts)


# -- worker processes --------------------------------------------------------------------------

_worker_policies: list[Policy] = []


def _init_worker(sources: Sequence[PolicySource]) -> None:
    _worker_policies[:] = [Policy.from_text(text, file) for text, file in sources]
    # A worker does nothing but fold.
    gc.set_threshold(FOLD_GC_THRESHOLD, *gc.get_threshold()[1:])


def _work(frame: pl.DataFrame) -> pl.DataFrame:
    return fold_frame(frame, _worker_policies)


class RowsPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="progress.data.speed")


def progress_bar(console: Console | None = None, *, disable: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]replay[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        RowsPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disable,
        transient=False,
    )


def _in_order(
    submit: Callable[[int, int], Future[pl.DataFrame]],
    slices: Sequence[tuple[int, int]],
    workers: int,
) -> Iterator[tuple[int, pl.DataFrame]]:
    """Each slice's (offset, length) `submit`ted to a pool; (length, verdicts) of each, in
    the order of the slices, as soon as the slices before it are in."""
    pending: dict[Future[pl.DataFrame], int] = {}
    finished: dict[int, pl.DataFrame] = {}
    todo = enumerate(slices)
    nxt = 0

    def fill() -> None:
        # A few chunks in flight or waiting per worker: busy workers, bounded memory.
        while len(pending) + len(finished) < 3 * workers:
            taken = next(todo, None)
            if taken is None:
                return
            pending[submit(*taken[1])] = taken[0]

    fill()
    while pending or finished:
        if nxt not in finished:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finished[pending.pop(future)] = future.result()
            continue
        yield slices[nxt][1], finished.pop(nxt)
        nxt += 1
        fill()


def replay_local(
    timeline: pl.DataFrame | TimelineBuilder,
    policies: Sequence[Policy],
    *,
    workers: int | None = None,
    chunk_rows: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    on_verdicts: Callable[[list[pl.DataFrame]], None] | None = None,
) -> list[pl.DataFrame]:
    """Verdicts of each policy (in order), one row per logged contact, in timeline order:
    customer by customer (in the order of their ids), each one's contacts in time order
    (`row` is each contact's row in its file).

    `workers`: threads or processes to fold in (default: one per core; 1 folds in this
    thread). `chunk_rows`: rows per chunk (default `THREAD_CHUNK_ROWS` for threads,
    `CHUNK_ROWS` otherwise). `on_rows` is told how many timeline rows each finished
    chunk held (for progress); `on_verdicts` is given each chunk's verdicts of every
    policy, in timeline order, as soon as they are in (to write them while later chunks
    fold)."""
    from tactful.replay import native

    workers = workers or os.cpu_count() or 1
    threads = all(native.enabled(p) for p in policies)
    if not threads and isinstance(timeline, TimelineBuilder):
        timeline = timeline.full()  # sent to worker processes a slice at a time
    # Only what the kernel reads (not the events' properties, say); from a builder, each
    # slice built as it is folded, so the whole timeline is never held, and its contacts'
    # shapes, event kinds, ... numbered once for the whole log (`native.LogCodes`).
    coded = threads and isinstance(timeline, TimelineBuilder) and timeline.has_files
    read = native.columns_for(policies, coded=coded) if threads else tuple(TIMELINE_COLUMNS)
    codes = None
    if coded:
        assert isinstance(timeline, TimelineBuilder)
        codes = native.LogCodes(timeline, content="_content" in read, tags="_tags" in read)
    if isinstance(timeline, TimelineBuilder):
        builder = timeline

        def piece(offset: int, length: int) -> pl.DataFrame:
            return builder.frame(offset, length, read)
    else:
        kept = timeline.select(read)

        def piece(offset: int, length: int) -> pl.DataFrame:
            return kept.slice(offset, length)

    def fold(offset: int, length: int) -> pl.DataFrame:
        # A coded slice's customers handed to the engine read every column: built again.
        whole = None if codes is None else (lambda: builder.frame(offset, length))
        return fold_frame(piece(offset, length), policies, codes=codes, whole=whole)

    size = chunk_rows or (thread_chunk_rows(timeline.height, workers) if threads else CHUNK_ROWS)
    slices = list(chunks(timeline, size))
    runs: list[list[pl.DataFrame]] = [[] for _ in policies]
    with contextlib.ExitStack() as stack:
        stack.enter_context(few_collections())
        stack.enter_context(small_pages())
        if workers <= 1 or len(slices) <= 1:
            folded: Iterator[tuple[int, pl.DataFrame]] = (
                (length, fold(offset, length)) for offset, length in slices
            )
        elif threads:
            pool = stack.enter_context(ThreadPoolExecutor(workers))
            folded = _in_order(lambda *at: pool.submit(fold, *at), slices, workers)
        else:
            sources = [policy_source(p) for p in policies]
            # Fresh interpreters: forking a process that runs Polars' thread pool can hang.
            processes = stack.enter_context(
                ProcessPoolExecutor(
                    workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker,
                    initargs=(sources,),
                )
            )
            submit = processes.submit
            folded = _in_order(lambda *at: submit(_work, piece(*at)), slices, workers)
        for length, both in folded:
            chunk = [
                (both if len(policies) == 1 else both.filter(pl.col("run") == run)).drop("run")
                for run in range(len(policies))
            ]
            for run, frame in enumerate(chunk):
                runs[run].append(frame)
            if on_verdicts:
                on_verdicts(chunk)
            if on_rows:
                on_rows(length)
    empty = pl.DataFrame(schema=VERDICT_SCHEMA).drop("run")
    return [pl.concat(frames) if frames else empty for frames in runs]
