"""Replay on Spark: the same per-customer fold, distributed with PySpark.

The timeline (see `tactful.replay.timeline`) is grouped by customer and each group folded
by `fold_columns` inside `applyInPandas`, so a cluster replays billions of rows with the
verdicts the local engine gives. PySpark is optional (`pip install 'tactful[spark]'`) and
imported only here.

    spark = SparkSession.builder.getOrCreate()
    timeline = spark.read.parquet("s3://.../timeline/")   # columns as TIMELINE_COLUMNS
    verdicts = replay_dataframe(timeline, [Policy.load("courtesy")])
    verdicts.write.parquet("s3://.../verdicts/")

`replay_timeline` does the round trip for a timeline read on this machine (what
`tactful replay --engine spark` runs, on `local[*]` unless TACTFUL_SPARK_MASTER names a
cluster).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tactful.policy.document import Policy
from tactful.replay.timeline import TIMELINE_COLUMNS, VERDICT_COLUMNS, fold_columns

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

_SPARK_TYPES = {"string": "string", "int64": "long", "bool": "boolean", "float64": "double"}
#: The verdicts' Spark schema, as DDL.
VERDICT_DDL = ", ".join(f"{n} {_SPARK_TYPES[t]}" for n, t in VERDICT_COLUMNS.items())
TIMELINE_DDL = ", ".join(f"{n} {_SPARK_TYPES[t]}" for n, t in TIMELINE_COLUMNS.items())

PolicySource = tuple[str, str]
_compiled: dict[tuple[PolicySource, ...], list[Policy]] = {}


def _policies(sources: tuple[PolicySource, ...]) -> list[Policy]:
    """Policies compiled once per executor process."""
    hit = _compiled.get(sources)
    if hit is None:
        hit = _compiled[sources] = [Policy.from_text(text, file) for text, file in sources]
    return hit


def _plain(values: list[Any], kind: str) -> list[Any]:
    """pandas' values as the local engine sees them: NaN is None, whole floats are ints."""
    out: list[Any] = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif kind == "int64":
            out.append(int(v))
        elif kind == "bool":
            out.append(bool(v))
        else:
            out.append(v)
    return out


def fold_pandas(sources: Sequence[PolicySource]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The function `applyInPandas` calls on each customer's rows."""
    key = tuple(sources)

    def run(frame: pd.DataFrame) -> pd.DataFrame:
        import pandas as pd

        frame = frame.sort_values(["at_us", "is_contact", "row"], kind="stable")
        columns = {
            name: _plain(frame[name].tolist(), kind) for name, kind in TIMELINE_COLUMNS.items()
        }
        out = fold_columns(columns, _policies(key))
        return pd.DataFrame(out, columns=list(VERDICT_COLUMNS))

    return run


def replay_dataframe(timeline: DataFrame, policies: Sequence[Policy]) -> DataFrame:
    """Verdicts of every policy (column `run`: its index) for a timeline Spark DataFrame."""
    sources = [(p.text, p.file) for p in policies]
    cols = list(TIMELINE_COLUMNS)
    return (
        timeline.select(*cols)
        .groupBy("customer_id")
        .applyInPandas(fold_pandas(sources), schema=VERDICT_DDL)
    )


def session(master: str | None = None, *, memory: str = "1g") -> SparkSession:
    """A Spark session: the active one, or a local one (`local[*]`) sized for a laptop."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(master or os.environ.get("TACTFUL_SPARK_MASTER", "local[*]"))
        .appName("tactful-replay")
        .config("spark.driver.memory", memory)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(max(2, (os.cpu_count() or 2) * 2)))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
    )
    return builder.getOrCreate()


def replay_timeline(
    timeline: pl.DataFrame,
    policies: Sequence[Policy],
    *,
    master: str | None = None,
    spark: SparkSession | None = None,
) -> list[pl.DataFrame]:
    """Replay a timeline held here on Spark; verdicts per policy in timeline order, exactly
    as `replay_local` returns them."""
    spark = spark or session(master)
    with tempfile.TemporaryDirectory(prefix="tactful-spark-") as tmp:
        source = Path(tmp) / "timeline.parquet"
        target = Path(tmp) / "verdicts"
        timeline.write_parquet(source)
        frame = spark.read.schema(TIMELINE_DDL).parquet(str(source))
        replay_dataframe(frame, policies).write.parquet(str(target))
        parts = sorted(target.glob("*.parquet"))
        from tactful.replay.local import VERDICT_SCHEMA

        if parts:
            merged = pl.concat(
                [pl.read_parquet(p).cast(pl.Schema(VERDICT_SCHEMA)) for p in parts],
                how="vertical",
            )
        else:
            merged = pl.DataFrame(schema=VERDICT_SCHEMA)
    merged = merged.sort(["run", "customer_id", "at_us", "row"])
    return [merged.filter(pl.col("run") == run).drop("run") for run in range(len(policies))]
