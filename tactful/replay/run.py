"""One replay from files to results: read, fold on an engine, write verdicts and a report.

    result = replay("contacts.parquet", "events.parquet", policy=Policy.load("courtesy"),
                    out="replay-out")

Writes to `out`: `verdicts.parquet` and `verdicts.csv` (one row per logged contact, in
timeline order: customer by customer, each one's contacts in time order; `row` is the
contact's row in its file), `verdicts-compare.*` with a second policy, `bad-rows.csv`
when rows were left out, and `report.html`. The local engine's CSV is written while the
replay folds, under a `.partial` name until the replay is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, cast

import numpy as np
import polars as pl
import pyarrow as pa

from tactful.policy.document import Policy
from tactful.replay import texts
from tactful.replay.direct import DirectFile
from tactful.replay.io import ISO_UTC, Log, Mapping_, load_log

EngineName = Literal["local", "spark"]
#: Every file a replay may write to its folder.
OUTPUTS = (
    "verdicts.csv",
    "verdicts.parquet",
    "verdicts-compare.csv",
    "verdicts-compare.parquet",
    "bad-rows.csv",
    "report.html",
)


@dataclass
class ReplayResult:
    log: Log
    policies: list[Policy]
    #: Verdicts per policy, in the order of `policies` (see `verdict_frame` for columns).
    verdicts: list[pl.DataFrame]
    #: The engine's time (the fold; the local engine's CSV written meanwhile).
    seconds: float
    engine: EngineName
    files: dict[str, Path] = field(default_factory=dict)
    #: Files an earlier replay left in the same folder that this one does not make (its
    #: comparison, bad rows or report), removed once this one's are all written.
    removed: list[Path] = field(default_factory=list)
    #: Reading and checking the logs; writing the verdicts, bad rows and report.
    read_seconds: float = 0.0
    write_seconds: float = 0.0

    @property
    def total_seconds(self) -> float:
        """The whole replay's time, from reading the logs to the last file written."""
        return self.read_seconds + self.seconds + self.write_seconds

    @property
    def rows(self) -> int:
        return self.log.rows

    def counts(self, run: int = 0) -> dict[str, int]:
        """Verdicts of each kind for policy `run` (~55 ms on 2.5M verdicts)."""
        frame = self.verdicts[run]
        got = dict(frame.group_by("verdict").len().iter_rows())
        return {v: int(got.get(v, 0)) for v in ("allow", "defer", "deny")}


def verdict_frame(raw: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Engine output as users read it: instants as UTC datetimes, the policy named (few-valued
    text as categoricals, `VERDICT_CATEGORICAL`)."""
    stamp = pl.Datetime("us", "UTC")
    return raw.select(
        "row",
        "customer_id",
        pl.col("at_us").cast(stamp).alias("at"),
        "channel",
        "purpose",
        "source",
        "campaign",
        "trigger",
        "offer",
        "outcome",
        "verdict",
        pl.col("not_before_us").cast(stamp).alias("not_before"),
        "rules",
        "reasons",
        "flags",
        "outcome_observed",
        "pressure_logged",
        "pressure_replayed",
        pl.lit(policy.name).cast(pl.Categorical).alias("policy"),
        pl.lit(policy.version).cast(pl.Categorical).alias("policy_version"),
    )


def instants_text(column: pl.Series) -> pl.Series | None:
    """A UTC datetime column as the text Polars' CSV writer makes of it under `ISO_UTC`
    (`texts.csv_instants`); None where that declines (a year outside 1-9999)."""
    given = column.is_not_null().to_numpy()
    us = column.dt.epoch("us").fill_null(0).to_numpy()
    ends, data, made = texts.csv_instants(us, given)
    if not made:
        return None
    valid = None if given.all() else pa.py_buffer(np.packbits(given, bitorder="little"))
    text = pa.LargeStringArray.from_buffers(
        len(column), pa.py_buffer(ends), pa.py_buffer(data), valid
    )
    return pl.Series(column.name, text)


def write_csv(frame: pl.DataFrame, sink: IO[bytes], *, header: bool = True) -> None:
    """Verdicts as CSV, their instants as `ISO_UTC` text, byte for byte as Polars writes
    them, made by `instants_text` first: Polars' own formatting (chrono's) took ~0.25 us
    an instant, about a fifth of the CSV's time."""
    made = [
        instants_text(frame.get_column(name))
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone == "UTC" and dtype.time_unit == "us"
    ]
    frame = frame.with_columns(column for column in made if column is not None)
    frame.write_csv(sink, include_header=header, datetime_format=ISO_UTC)


def _io(file: DirectFile) -> IO[bytes]:
    """Polars writes into any object with `write`, though its types name files."""
    return cast(IO[bytes], file)


class VerdictFiles:
    """Each policy's verdicts as Parquet and CSV in a folder (`verdicts.*`, then
    `verdicts-compare.*`). `add` writes a chunk's verdicts to the CSV as a replay folds
    (10M rows: ~1.4 s less than writing them after; the Parquet is written whole, by
    `finish`), both past the page cache where the system allows it (`DirectFile`); files
    stay under a `.partial` name until `finish`, and a replay that stops removes them
    (`discard`)."""

    def __init__(self, out: Path, policies: Sequence[Policy]) -> None:
        self.out = out  # made when the first file is written
        self.policies = list(policies)
        self.stems = [out / ("verdicts" if run == 0 else "verdicts-compare") for run in
                      range(len(policies))]  # fmt: skip
        self._csv: list[DirectFile] = []

    def _path(self, run: int, suffix: str) -> tuple[Path, Path]:
        """A policy's file of verdicts (`.csv`, `.parquet`): while written, and when whole."""
        whole = self.stems[run].with_suffix(suffix)
        return whole.with_name(whole.name + ".partial"), whole

    def _paths(self) -> list[tuple[Path, Path]]:
        """Every file's `_path`."""
        return [self._path(run, s) for run in range(len(self.stems)) for s in (".csv", ".parquet")]

    @property
    def paths(self) -> list[Path]:
        """Every file's name once whole."""
        return [whole for _, whole in self._paths()]

    def add(self, chunk: Sequence[pl.DataFrame]) -> None:
        """The next verdicts (as the engine gives them, `VERDICT_COLUMNS`) of each policy."""
        first = not self._csv
        if first:
            self.out.mkdir(parents=True, exist_ok=True)
            self._csv = [DirectFile(self._path(run, ".csv")[0]) for run in range(len(self.stems))]
        for run, raw in enumerate(chunk):
            frame = verdict_frame(raw, self.policies[run])
            write_csv(frame, _io(self._csv[run]), header=first)

    def finish(self, verdicts: Sequence[pl.DataFrame]) -> dict[str, Path]:
        """Every policy's verdicts (`verdict_frame`s, all of them): the CSV written if
        `add` was never called, the Parquet, both under their own names."""
        files: dict[str, Path] = {}
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            for run, frame in enumerate(verdicts):
                if self._csv:
                    self._csv[run].close()
                else:
                    with DirectFile(self._path(run, ".csv")[0]) as csv:
                        write_csv(frame, _io(csv))
                # zstd's quickest level: 2.5M verdicts in 0.9 s instead of 1.3 s, 2% larger.
                parquet, whole = self._path(run, ".parquet")
                with DirectFile(parquet) as sink:
                    frame.write_parquet(_io(sink), compression="zstd", compression_level=1)
                files[self.stems[run].name] = whole
        except BaseException:
            self.discard()
            raise
        # Under their own names once every file is whole.
        for partial, whole in self._paths():
            partial.replace(whole)
        self._csv = []
        return files

    def discard(self) -> None:
        """Close and remove what was written."""
        for handle in self._csv:
            handle.abandon()
        self._csv = []
        for partial, _ in self._paths():
            with suppress(FileNotFoundError):
                partial.unlink()


def run_engine(
    log: Log,
    policies: Sequence[Policy],
    engine: EngineName = "local",
    *,
    workers: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    spark_master: str | None = None,
    files: VerdictFiles | None = None,
) -> list[pl.DataFrame]:
    """Each policy's verdicts (`verdict_frame`), in timeline order; the local engine's
    written to `files` as it folds (`VerdictFiles.finish` completes them)."""
    if engine == "spark":
        from tactful.replay.spark import replay_timeline

        raw = replay_timeline(log.timeline, policies, master=spark_master)
        if on_rows:
            on_rows(log.rows)
    else:
        from tactful.replay.local import replay_local

        raw = replay_local(
            log.source,
            policies,
            workers=workers,
            on_rows=on_rows,
            on_verdicts=files.add if files is not None else None,
        )
    return [verdict_frame(r, p) for r, p in zip(raw, policies, strict=True)]


def replay(
    contacts: str | Path,
    events: str | Path | None,
    policy: Policy,
    *,
    compare: Policy | None = None,
    customers: str | Path | None = None,
    mapping: Mapping_ | None = None,
    strict: bool = False,
    out: str | Path | None = None,
    engine: EngineName = "local",
    workers: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    on_loaded: Callable[[Log], None] | None = None,
    report: bool = True,
) -> ReplayResult:
    """Replay the logs through `policy` (and `compare`); write results to `out` if given."""
    begun = time.perf_counter()
    log = load_log(contacts, events, customers=customers, mapping=mapping, strict=strict)
    if on_loaded:
        on_loaded(log)
    policies = [policy] if compare is None else [policy, compare]
    files = VerdictFiles(Path(out), policies) if out is not None else None
    started = time.perf_counter()
    try:
        verdicts = run_engine(log, policies, engine, workers=workers, on_rows=on_rows,
                              files=files)  # fmt: skip
    except BaseException:
        if files is not None:
            files.discard()
        raise
    folded = time.perf_counter()
    result = ReplayResult(log, policies, verdicts, folded - started, engine)
    result.read_seconds = started - begun
    if out is not None:
        write_results(
            result, Path(out), sources=(contacts, events, customers), report=report, files=files
        )
        result.write_seconds = time.perf_counter() - folded
    return result


def write_results(
    result: ReplayResult,
    out: Path,
    *,
    sources: Sequence[str | Path | None] = (),
    report: bool = True,
    files: VerdictFiles | None = None,
) -> None:
    """The verdicts (completing what `files` began, if given), bad rows and report."""
    files = files or VerdictFiles(out, result.policies)
    result.files.update(files.finish(result.verdicts))
    if result.log.bad_rows:
        result.log.bad_rows_frame().write_csv(out / "bad-rows.csv")
        result.files["bad-rows"] = out / "bad-rows.csv"
    if report:
        from tactful.replay.report import render_report

        html = render_report(result, sources=[str(s) for s in sources if s is not None])
        (out / "report.html").write_text(html, encoding="utf-8")
        result.files["report"] = out / "report.html"
    # What an earlier replay into this folder wrote and this one does not: left beside
    # these verdicts, an old comparison, bad rows or report would pass for this replay's.
    made = {*files.paths, *result.files.values()}
    for name in OUTPUTS:
        path = out / name
        if path not in made and path.exists():
            path.unlink()
            result.removed.append(path)
