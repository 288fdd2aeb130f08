"""The engines: local in one or several processes, and Spark, give identical verdicts."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tactful.policy.document import Policy
from tactful.replay import kernel, local, native
from tactful.replay.io import load_log
from tactful.replay.local import (
    FOLD_GC_THRESHOLD,
    THREAD_CHUNK_ROWS,
    chunks,
    replay_local,
    thread_chunk_rows,
)
from tactful.replay.synthetic import LogFiles, write_log

#: More revocation rules than the replay kernel keeps bits for: the engine folds it.
REVOKING = "\n".join(
    [
        "name: revoking",
        'version: "1"',
        "extends: [courtesy]",
        "rules:",
        *(
            f"  - {{id: stop-{k}, kind: revocation, keywords: [stop{k}], message: Revoked.}}"
            for k in range(kernel.LIFTS + 1)
        ),
    ]
)
#: Courtesy with emails counted per offer and campaign together (two `per` keys).
WEEKLY = """
name: weekly
version: "1"
extends: [courtesy]
rules:
  - id: two-keys
    kind: frequency
    scope: {channels: [email]}
    count: 1
    window: 7d
    per: [offer, campaign]
    message: "One email a week per offer and campaign; {counted} already."
"""
#: Courtesy and a policy of one rule more.
POLICIES = [Policy.load("courtesy"), Policy.from_text(WEEKLY, "weekly.yaml")]


def in_time_order(files: LogFiles) -> LogFiles:
    """The log's contacts and events each in time order, as systems export them (the
    generator writes them customer by customer, where row order is timeline order)."""
    for path in (files.contacts, files.events):
        pl.read_parquet(path).sort("at", maintain_order=True).write_parquet(path)
    return files


@pytest.fixture(scope="module")
def timeline(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    folder = tmp_path_factory.mktemp("log")
    files = in_time_order(write_log(folder, customers=40, seed=3))
    return load_log(files.contacts, files.events, customers=files.customers).timeline


def test_verdicts_come_in_timeline_order(tmp_path: Path, timeline: pl.DataFrame) -> None:
    """Customer by customer, each one's contacts in time order (not the rows' order in a
    log written in time order), from a timeline or built a slice at a time."""
    files = in_time_order(write_log(tmp_path, customers=40, seed=3))
    source = load_log(files.contacts, files.events, customers=files.customers).source
    got = replay_local(source, POLICIES[:1], workers=2, chunk_rows=700)[0]
    assert got.equals(replay_local(timeline, POLICIES[:1], workers=1)[0])
    keys = ["customer_id", "at_us", "row"]
    assert got.select(keys).equals(got.select(keys).sort(keys))
    assert not got.get_column("row").is_sorted()
    contacts = timeline.filter(pl.col("is_contact"))
    assert got.select(keys).equals(contacts.select(keys))


def test_chunks_never_split_a_customer(timeline: pl.DataFrame) -> None:
    slices = list(chunks(timeline, 500))
    assert len(slices) > 3
    assert sum(n for _, n in slices) == timeline.height
    seen: set[str] = set()
    for offset, length in slices:
        ids = set(timeline.slice(offset, length).get_column("customer_id").to_list())
        assert not ids & seen
        seen |= ids


@pytest.mark.parametrize("workers", [1, 2, 3, 4])
def test_threads_get_as_many_slices_each_of_about_the_chunk_size(workers: int) -> None:
    """`thread_chunk_rows`: the 10M-row log's slices (13 of `THREAD_CHUNK_ROWS`) made a
    number the threads share evenly, each no larger than the chunk size, fewer than
    `workers` more than that size would make; a small log split between the threads."""
    for height in (1, 5, 999, 200_000, 1_600_001, 10_169_250):
        size = thread_chunk_rows(height, workers)
        count = -(-height // size)
        assert size <= max(THREAD_CHUNK_ROWS, 1) and size >= 1
        if height >= 1000 * workers:  # (a few rows: split as they divide)
            assert count % workers == 0, (height, workers, size)
            assert count < -(-height // THREAD_CHUNK_ROWS) + workers
    assert -(-10_169_250 // thread_chunk_rows(10_169_250, 2)) == 14


def test_two_threads_fold_an_even_number_of_slices(
    timeline: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "THREAD_CHUNK_ROWS", timeline.height // 3 + 1)  # 3 slices
    sizes: list[int] = []
    got = replay_local(timeline, POLICIES[:1], workers=2, on_rows=sizes.append)[0]
    assert len(sizes) == 4 and sum(sizes) == timeline.height
    assert got.equals(replay_local(timeline, POLICIES[:1], workers=1)[0])


def test_processes_give_the_verdicts_of_one_process(
    timeline: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(native.NATIVE_ENV, "0")  # the engine's: in processes
    one = replay_local(timeline, POLICIES, workers=1)
    two = replay_local(timeline, POLICIES, workers=2, chunk_rows=1500)
    for a, b in zip(one, two, strict=True):
        assert a.height > 100
        assert a.equals(b)
    # Two different policies really differ (the comparison is not vacuous).
    assert not one[0].select("verdict").equals(one[1].select("verdict"))


def test_threads_fold_what_the_kernel_covers_as_one_thread_does(
    timeline: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = replay_local(timeline, POLICIES[:1], workers=1)

    def no_processes(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("courtesy is the kernel's: folded in threads, not processes")

    monkeypatch.setattr(local, "ProcessPoolExecutor", no_processes)
    threads = replay_local(timeline, POLICIES[:1], workers=3, chunk_rows=700)
    assert len(list(chunks(timeline, 700))) > 3
    assert one[0].height > 100 and one[0].equals(threads[0])
    revoking = Policy.from_text(REVOKING, "revoking.yaml")
    assert native.unsupported(revoking) == [f"more than {kernel.LIFTS} revocation rules"]
    with pytest.raises(AssertionError, match="in threads, not processes"):
        replay_local(timeline, [revoking], workers=2, chunk_rows=1500)  # the engine's


def test_the_fold_collects_young_objects_less_often_and_restores_the_setting(
    timeline: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = gc.get_threshold()
    seen: list[int] = []
    fold = local.fold_frame

    def watching(frame: pl.DataFrame, policies: Any, **given: Any) -> pl.DataFrame:
        seen.append(gc.get_threshold()[0])
        if len(seen) == 2:
            raise RuntimeError("a chunk fails")
        return fold(frame, policies, **given)

    monkeypatch.setattr(local, "fold_frame", watching)
    with pytest.raises(RuntimeError, match="a chunk fails"):
        replay_local(timeline, POLICIES[:1], workers=1, chunk_rows=500)
    assert seen == [FOLD_GC_THRESHOLD, FOLD_GC_THRESHOLD]
    assert gc.get_threshold() == before  # restored, even when the fold fails


def test_the_fold_asks_numpy_for_no_huge_pages_and_restores_the_setting(
    timeline: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    switch = local._PageSwitch.switch()
    assert switch is not None  # the numpy the project installs has it
    before = switch(True)
    seen: list[bool] = []
    fold = local.fold_frame

    def watching(frame: pl.DataFrame, policies: Any, **given: Any) -> pl.DataFrame:
        # Asking the switch answers the setting (and sets it; put back at once).
        seen.append(switch(False))
        if len(seen) == 2:
            raise RuntimeError("a chunk fails")
        return fold(frame, policies, **given)

    monkeypatch.setattr(local, "fold_frame", watching)
    try:
        with pytest.raises(RuntimeError, match="a chunk fails"):
            replay_local(timeline, POLICIES[:1], workers=1, chunk_rows=500)
        assert seen == [False, False]
        assert switch(True) is True  # restored, even when the fold fails
    finally:
        switch(before)


def _collected(obj: object) -> bool:
    """Whether the collector goes through `obj` (it is in a generation, not frozen)."""
    return any(o is obj for o in gc.get_objects())


def test_a_fold_leaves_what_the_process_held_out_of_its_collections() -> None:
    """`few_collections` freezes what the process held before the fold (a collection of
    the oldest generation would go through all of it), and gives it back after. Asked by
    the objects themselves, not by counts: other threads (pytest-xdist's) make and free
    objects meanwhile, frozen ones too."""
    held = [[object()] for _ in range(1000)]  # objects the collector tracks
    assert gc.get_freeze_count() == 0
    with local.few_collections():
        assert not _collected(held)
        assert gc.get_threshold()[0] == local.FOLD_GC_THRESHOLD
    assert _collected(held)
    assert gc.get_freeze_count() == 0
    # A process that froze objects itself keeps them frozen, and has nothing more frozen
    # for good.
    gc.freeze()
    try:
        made = [object()]
        with local.few_collections():
            assert _collected(made)
        assert _collected(made)
        assert not _collected(held)
    finally:
        gc.unfreeze()


def test_small_pages_restores_numpys_setting_when_the_last_of_overlapping_blocks_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setting = [True]

    def switch(on: bool) -> bool:
        was, setting[0] = setting[0], on
        return was

    monkeypatch.setattr(local._PageSwitch, "switch", staticmethod(lambda: switch))
    first, second = local.small_pages(), local.small_pages()
    first.__enter__()
    second.__enter__()
    assert setting == [False]
    first.__exit__(None, None, None)
    assert setting == [False]  # the second replay still folds
    second.__exit__(None, None, None)
    assert setting == [True]


#: In a fresh interpreter: a 24 MB array made, written and freed, then another; the page
#: faults of the second (its pages written) printed. `KEEP`: with `keep_freed_memory`.
_REUSE = """
import ctypes, resource, sys
import numpy as np
from tactful.replay import local
ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE: 4 KiB pages, whatever the system's
if sys.argv[1] == "1":
    assert local.keep_freed_memory()
a = np.ones(3 << 20)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(3 << 20)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")
def test_kept_memory_is_reused_without_faulting_its_pages_in_again() -> None:
    """glibc hands a freed 24 MB block back to the system and faults the next one in
    again, page by page (~6,000 faults); `keep_freed_memory` has it reuse the block."""
    faults = []
    for keep in ("0", "1"):
        done = subprocess.run(
            [sys.executable, "-c", _REUSE, keep], capture_output=True, text=True, check=True
        )
        faults.append(int(done.stdout))
    assert faults[0] > 5000
    assert faults[1] < 500


@pytest.mark.spark
def test_spark_gives_the_verdicts_of_the_local_engine(timeline: pl.DataFrame, spark: Any) -> None:
    from tactful.replay.spark import replay_timeline

    part = timeline.filter(pl.col("customer_id") < "c00000015")
    local = replay_local(part, POLICIES, workers=1)
    distributed = replay_timeline(part, POLICIES, spark=spark)
    for a, b in zip(local, distributed, strict=True):
        assert a.height > 50
        assert a.equals(b)
    assert set(local[0].get_column("verdict")) == {"allow", "defer", "deny"}


@pytest.mark.spark
def test_spark_on_a_spark_dataframe(tmp_path: Path, spark: Any) -> None:
    """What a team with a cluster calls: a timeline Spark DataFrame in, verdicts out."""
    from tactful.replay.spark import replay_dataframe

    files = write_log(tmp_path, customers=3, seed=9)
    timeline = load_log(files.contacts, files.events).timeline
    timeline.write_parquet(tmp_path / "timeline.parquet")
    frame = spark.read.parquet(str(tmp_path / "timeline.parquet"))
    rows = replay_dataframe(frame, POLICIES[:1]).select("row", "verdict").collect()
    local = replay_local(timeline, POLICIES[:1], workers=1)[0]
    assert sorted((r["row"], r["verdict"]) for r in rows) == sorted(
        local.select("row", "verdict").rows()
    )


@pytest.mark.spark
def test_the_cli_spark_engine(tmp_path: Path, spark: Any) -> None:
    from typer.testing import CliRunner

    from tactful.cli import app

    files = in_time_order(write_log(tmp_path / "log", customers=3, seed=2))
    runs = {}
    for engine in ("local", "spark"):
        out = tmp_path / engine
        args = ["replay", "--contacts", str(files.contacts), "--events", str(files.events),
                "--policy", "courtesy", "--engine", engine, "--out", str(out), "--no-report",
                "--workers", "1"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        runs[engine] = pl.read_parquet(out / "verdicts.parquet")
        # The CSV holds what the Parquet does (the local engine's, written as it folded).
        csv = pl.read_csv(out / "verdicts.csv", schema=runs[engine].schema)
        assert csv.equals(runs[engine])
    assert not runs["local"].get_column("row").is_sorted()
    assert runs["local"].height > 20
    assert runs["local"].equals(runs["spark"])
