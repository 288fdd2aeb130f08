"""One replay from files to results: read, fold on an engine, write verdicts and a report.

    result = replay("contacts.parquet", "events.parquet", policy=Policy.load("courtesy"),
                    out="replay-out")

Writes to `out`: `verdicts.parquet` and `verdicts.csv` (one row per logged contact),
`verdicts-compare.*` with a second policy, `bad-rows.csv` when rows were left out, and
`report.html`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from tactful.policy.document import Policy
from tactful.replay.io import ISO_UTC, Log, Mapping_, load_log

EngineName = Literal["local", "spark"]


@dataclass
class ReplayResult:
    log: Log
    policies: list[Policy]
    #: Verdicts per policy, in the order of `policies` (see `verdict_frame` for columns).
    verdicts: list[pl.DataFrame]
    seconds: float
    engine: EngineName
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.log.rows

    def counts(self, run: int = 0) -> dict[str, int]:
        frame = self.verdicts[run]
        got = dict(frame.group_by("verdict").len().iter_rows())
        return {v: int(got.get(v, 0)) for v in ("allow", "defer", "deny")}


def verdict_frame(raw: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """Engine output as users read it: instants as UTC datetimes, the policy named."""
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
        pl.lit(policy.name).alias("policy"),
        pl.lit(policy.version).alias("policy_version"),
    )


def run_engine(
    log: Log,
    policies: Sequence[Policy],
    engine: EngineName = "local",
    *,
    workers: int | None = None,
    on_rows: Callable[[int], None] | None = None,
    spark_master: str | None = None,
) -> list[pl.DataFrame]:
    if engine == "spark":
        from tactful.replay.spark import replay_timeline

        raw = replay_timeline(log.timeline, policies, master=spark_master)
        if on_rows:
            on_rows(log.rows)
    else:
        from tactful.replay.local import replay_local

        raw = replay_local(log.source, policies, workers=workers, on_rows=on_rows)
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
    log = load_log(contacts, events, customers=customers, mapping=mapping, strict=strict)
    if on_loaded:
        on_loaded(log)
    policies = [policy] if compare is None else [policy, compare]
    started = time.perf_counter()
    verdicts = run_engine(log, policies, engine, workers=workers, on_rows=on_rows)
    result = ReplayResult(log, policies, verdicts, time.perf_counter() - started, engine)
    if out is not None:
        write_results(result, Path(out), sources=(contacts, events, customers), report=report)
    return result


def write_results(
    result: ReplayResult,
    out: Path,
    *,
    sources: Sequence[str | Path | None] = (),
    report: bool = True,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for run, frame in enumerate(result.verdicts):
        stem = "verdicts" if run == 0 else "verdicts-compare"
        # zstd's quickest level: 2.5M verdicts in 0.9 s instead of 1.3 s, 2% larger.
        frame.write_parquet(out / f"{stem}.parquet", compression="zstd", compression_level=1)
        frame.write_csv(out / f"{stem}.csv", datetime_format=ISO_UTC)
        result.files[stem] = out / f"{stem}.parquet"
    if result.log.bad_rows:
        result.log.bad_rows_frame().write_csv(out / "bad-rows.csv")
        result.files["bad-rows"] = out / "bad-rows.csv"
    if report:
        from tactful.replay.report import render_report

        html = render_report(result, sources=[str(s) for s in sources if s is not None])
        (out / "report.html").write_text(html, encoding="utf-8")
        result.files["report"] = out / "report.html"
