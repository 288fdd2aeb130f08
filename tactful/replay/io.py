"""Read a contact log and an event log (CSV or Parquet) into one validated timeline.

Contacts: `customer_id, at, channel, purpose` and optionally `trigger, trigger_at, offer,
campaign, source, outcome, subject, body, flags, discount, priority, tags`.
Events: `customer_id, at, event` and optionally `event_id` (or `messageId`), `properties`
(a JSON object) and any other columns, which become the event's properties
(`session_id`, `offer`, `channel`, `purpose`, `until`, ...).
Customers (optional): `customer_id, timezone, country, subdivision, phones`; a customer
not listed has no profile, so local time is UTC unless the policy learns otherwise.

`--map at=timestamp,customer_id=user_id` names the columns of logs that call them
otherwise; `contacts.at=sent_at` applies to one file only. Every bad row is reported
with its file, row (1 is the first row after the header) and column; without `strict`
those rows are left out of the replay and listed in the output, with `strict` they stop
it. Nothing is dropped silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from tactful.model import Outcome
from tactful.replay.order import TALLIED, some_rows, spread, timeline_order
from tactful.replay.timeline import CATEGORICAL_COLUMNS, TIMELINE_COLUMNS

ROW = "__row"
#: The service's pattern for channel and purpose names.
NAME = r"^[a-z][a-z0-9_]{0,39}$"
OUTCOMES = tuple(o.value for o in Outcome)
TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M%z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
)
#: How most logs write a time (ISO 8601 in UTC), read before the rest of `TIME_FORMATS`;
#: and how a replay writes times as text (the verdicts' CSV).
ISO_UTC = "%Y-%m-%dT%H:%M:%S%.fZ"
TRUE = ("true", "1", "yes", "y", "t")
FALSE = ("false", "0", "no", "n", "f", "")

CONTACT_REQUIRED = ("customer_id", "at", "channel", "purpose")
CONTACT_OPTIONAL = (
    "trigger",
    "trigger_at",
    "offer",
    "campaign",
    "source",
    "outcome",
    "subject",
    "body",
    "flags",
    "discount",
    "priority",
    "tags",
)
EVENT_REQUIRED = ("customer_id", "at", "event")
CUSTOMER_REQUIRED = ("customer_id",)
CUSTOMER_OPTIONAL = ("timezone", "country", "subdivision", "phones")
PROFILE_COLUMNS = CUSTOMER_OPTIONAL


class InputError(Exception):
    """A log that cannot be replayed at all (missing file or column, unreadable), or bad
    rows under `strict`."""


@dataclass(frozen=True, slots=True)
class BadRow:
    file: str
    row: int
    column: str
    value: str | None
    message: str

    def __str__(self) -> str:
        shown = "" if self.value is None else f" {self.value!r}"
        return f"{self.file} row {self.row}, column {self.column!r}:{shown} {self.message}"


@dataclass
class Log:
    """A validated log: its timeline (sorted by customer then time, built when first
    read, or slice by slice from `source`), and the rows left out of it."""

    source: TimelineBuilder
    bad_rows: list[BadRow] = field(default_factory=list)
    contacts: int = 0
    events: int = 0
    profiles: int = 0

    @property
    def timeline(self) -> pl.DataFrame:
        return self.source.full()

    @property
    def rows(self) -> int:
        """The timeline's rows (contacts and events), without building it."""
        return self.source.height

    @property
    def customers(self) -> int:
        """How many customers the timeline holds (counted by the sort)."""
        return len(self.source.starts) - 1

    def bad_rows_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "file": [b.file for b in self.bad_rows],
                "row": [b.row for b in self.bad_rows],
                "column": [b.column for b in self.bad_rows],
                "value": [b.value for b in self.bad_rows],
                "message": [b.message for b in self.bad_rows],
            },
            schema={
                "file": pl.String,
                "row": pl.Int64,
                "column": pl.String,
                "value": pl.String,
                "message": pl.String,
            },
        )


# -- column mapping --------------------------------------------------------------------------

Mapping_ = dict[str, dict[str, str]]


def parse_mapping(specs: Iterable[str]) -> Mapping_:
    """`at=timestamp,customer_id=user_id` (repeatable) into {file kind or "*": {ours: theirs}}.
    A key may name one file: `contacts.at=sent_at`, `events.event=type`."""
    out: Mapping_ = {}
    for spec in specs:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            ours, sep, theirs = part.partition("=")
            ours, theirs = ours.strip(), theirs.strip()
            if not sep or not ours or not theirs:
                raise InputError(f"--map {part!r}: expected COLUMN=NAME_IN_FILE, e.g. at=timestamp")
            scope, dot, name = ours.partition(".")
            if dot and scope in ("contacts", "events", "customers"):
                out.setdefault(scope, {})[name] = theirs
            else:
                out.setdefault("*", {})[ours] = theirs
    return out


def _apply_mapping(df: pl.DataFrame, kind: str, mapping: Mapping_, file: str) -> pl.DataFrame:
    wanted = {**mapping.get("*", {}), **mapping.get(kind, {})}
    renames: dict[str, str] = {}
    for ours, theirs in wanted.items():
        if theirs in df.columns:
            renames[theirs] = ours
        elif kind in mapping and ours in mapping[kind]:
            raise InputError(f"{file}: --map {kind}.{ours}={theirs}: no column {theirs!r}")
    if not renames:
        # Nothing to rename: the frame as read (a rename of nothing is a query that copies
        # a frame whose columns lie in pieces cut apart differently, ~0.1 s for 10M rows).
        return df
    # A mapped column replaces one of ours that the file also has under our name.
    clash = [ours for theirs, ours in renames.items() if ours in df.columns and ours != theirs]
    return df.drop(clash).rename(renames)


# -- reading -----------------------------------------------------------------------------------


def _parquet_file(p: Path) -> bool:
    """Whether `p`, by its name, is a Parquet file."""
    suffixes = "".join(p.suffixes).lower()
    return ".parquet" in suffixes or suffixes.endswith(".pq")


def read_table(path: str | Path, categorical: Collection[str] = ()) -> pl.DataFrame:
    """A CSV file (every column read as text) or a Parquet file or folder of Parquet files.
    `categorical`: columns of few values, read from Parquet as categoricals where they
    are text (`_parquet`)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    try:
        if p.is_dir():
            return _parquet(pl.scan_parquet(p / "**" / "*.parquet"), categorical)
        if _parquet_file(p):
            return _parquet(pl.scan_parquet(p), categorical, p)
        suffixes = "".join(p.suffixes).lower()
        if ".csv" in suffixes or ".tsv" in suffixes or suffixes.endswith(".txt"):
            sep = "\t" if ".tsv" in suffixes else ","
            return pl.read_csv(p, infer_schema=False, separator=sep)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{p}: cannot read: {exc}") from exc
    raise InputError(f"{p}: unknown format (expected .csv, .tsv or .parquet)")


def _parquet(
    scan: pl.LazyFrame, categorical: Collection[str], file: Path | None = None
) -> pl.DataFrame:
    """`scan` read, its `categorical` columns that hold text as categoricals. From one
    `file`, those are read by Arrow as dictionaries, as Parquet writers store such
    columns: a row's code is its dictionary index, only each row group's dictionary is
    looked up, where Polars 2.1's cast looks each row's text up (~50 ns a row here: the
    10M-row log's casts took ~1.2 CPU-seconds, as dictionaries ~0.6)."""
    schema = scan.collect_schema()
    cast = [c for c in categorical if schema.get(c) == pl.String]
    if not cast:
        return scan.collect()
    if file is not None:
        import pyarrow.parquet as pq

        try:
            # (`ParquetFile`, not `read_table`: that imports pandas, ~0.25 s.)
            with pq.ParquetFile(file, read_dictionary=cast) as parquet:
                table = parquet.read(columns=cast)
        except (pa.ArrowException, OSError):
            table = None  # what Arrow does not read as Polars does: Polars' cast
        if table is not None and table.column_names == cast:
            coded = pl.from_arrow(table)
            assert isinstance(coded, pl.DataFrame)
            rest = scan.drop(cast).collect()
            if coded.height == rest.height and all(t == pl.Categorical for t in coded.dtypes):
                return pl.concat([rest, coded], how="horizontal").select(schema.names())
    return scan.with_columns(pl.col(cast).cast(pl.Categorical)).collect()


#: The row of each of `read_apart`'s values in its file (0 for the first).
APART_ROW = "__file_row"


def _mostly_null(path: Path) -> list[str]:
    """The columns of a Parquet file that more than half its rows leave null, as its
    statistics count them (none where some row group has no null count)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    if meta.num_rows == 0:
        return []
    top = set(meta.schema.to_arrow_schema().names)
    nulls: dict[str, int] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i in range(group.num_columns):
            column = group.column(i)
            stats = column.statistics
            if stats is None or not stats.has_null_count:
                return []
            name = column.path_in_schema
            nulls[name] = nulls.get(name, 0) + stats.null_count
    return [c for c, n in nulls.items() if c in top and 2 * n > meta.num_rows]


def read_apart(
    path: str | Path, categorical: Collection[str] = (), whole: Collection[str] = ()
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """`read_table`, except that a Parquet file's columns that its statistics show to be
    mostly null (an event's property most events lack: an offer, a snooze's end), and
    that are not in `whole`, are read apart: only the rows where one of them has a
    value, with their `APART_ROW` (the second frame; None where none are read apart).
    The first frame has every column in the file's order, those read apart as nulls that
    take no memory. 7.7M events with five such properties: read in 0.63-0.67 CPU-seconds
    instead of 0.86-0.88, touching 78K pages of fresh memory instead of 223-226K; and
    the replay holds 600 MB less."""
    p = Path(path)
    parquet = p.is_file() and _parquet_file(p)
    apart = [c for c in _mostly_null(p) if c not in whole] if parquet else []
    if not apart:
        return read_table(p, categorical), None
    try:
        scan = pl.scan_parquet(p)
        names = scan.collect_schema().names()
        kept = [c for c in names if c not in apart]
        df = _parquet(scan.select(kept), categorical, p)
        some = pl.any_horizontal(pl.col(c).is_not_null() for c in apart)
        side = scan.with_row_index(APART_ROW).filter(some).select(APART_ROW, *apart).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{p}: cannot read: {exc}") from exc
    nulls = {c: pl.repeat(None, df.height, eager=True).alias(c) for c in apart}
    return df.select(nulls[c] if c in nulls else pl.col(c) for c in names), side


def _require(df: pl.DataFrame, required: Sequence[str], file: str, kind: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        have = ", ".join(c for c in df.columns if c != ROW) or "none"
        hint = ", ".join(f"{kind}.{m}=YOUR_NAME" for m in missing)
        raise InputError(
            f"{file}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (columns found: {have}); "
            f"name yours with --map {hint}"
        )


# -- validation ------------------------------------------------------------------------------


class _Checker:
    """Collects bad rows of one file."""

    def __init__(self, df: pl.DataFrame, file: str) -> None:
        self.df = df
        self.file = file
        self.bad: list[BadRow] = []

    def flag(self, mask: pl.Expr | pl.Series, column: str, message: str) -> None:
        hits = self.df.filter(mask).select(ROW, pl.col(column).cast(pl.String).alias("v"))
        for row, value in hits.iter_rows():
            self.bad.append(BadRow(self.file, row, column, value, message))

    def flag_rows(self, rows: Iterable[tuple[int, str | None]], column: str, message: str) -> None:
        for row, value in rows:
            self.bad.append(BadRow(self.file, row, column, value, message))


def _nulls(name: str, n: int, dtype: pl.DataType | type[pl.DataType]) -> pl.Series:
    """A column of `n` nulls (made by Polars: a list of `n` Nones costs ~55 ns a row)."""
    return pl.repeat(None, n, dtype=dtype, eager=True).alias(name)


def _spread(
    values: pl.Series, at: pl.Series, src: pl.Series, n: int, given: np.ndarray | None = None
) -> pl.Series:
    """A column of `n` rows holding `values[src[k]]` at `at[k]`, null elsewhere. `given`:
    where `values` is mostly null, which of its rows are not (only those are gathered:
    an event's properties, say, 4x quicker)."""
    if given is not None:
        keep = pl.Series(given[src.to_numpy()])
        at, src = at.filter(keep), src.filter(keep)
    elif values.dtype == pl.String:
        # Text: gathered by an index with nulls in it, twice as quick as scattered.
        return values.gather(_nulls("at", n, pl.UInt32).scatter(at, src))
    # Fixed width (numbers, flags, categoricals, which keep their codes): gathered by an
    # index without nulls and scattered into place, 5x quicker for a categorical.
    return _nulls(values.name, n, values.dtype).scatter(at, values.gather(src))


def _blank(column: str) -> pl.Expr:
    c = pl.col(column)
    return c.is_null() | (c.cast(pl.String).str.strip_chars() == "")


def _text(df: pl.DataFrame, column: str) -> pl.Expr:
    """A column as stripped text, empty as null (absent columns: all null)."""
    if column not in df.columns:
        return pl.lit(None, dtype=pl.String).alias(column)
    c = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(c == "").then(None).otherwise(c).alias(column)


def _python_time(value: str) -> int | None:
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    from tactful.replay.timeline import to_us

    try:
        return to_us(t.astimezone(UTC))
    except OverflowError:
        return None


def _iso_times(raw: pl.Series) -> pl.Series | None:
    """Every time in `raw` as epoch microseconds, read by Arrow's ISO 8601 reader, or None
    if it cannot read one of them. It takes only times with an offset (or Z), and reads
    them 5x quicker than Polars' format reader (10M rows: ~0.5 s)."""
    try:
        arrow = pc.cast(raw.to_arrow(), pa.timestamp("us", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    parsed = pl.Series(raw.name, arrow)
    return parsed.dt.epoch("us")


def _times(chk: _Checker, column: str, *, required: bool) -> pl.Series:
    """A time column as epoch microseconds (null where absent); bad values flagged."""
    df = chk.df
    if column not in df.columns:
        return _nulls(column, df.height, pl.Int64)
    dtype = df.schema[column]
    col = pl.col(column)
    blank: pl.Series | None = None  # text's blank rows
    if isinstance(dtype, pl.Datetime):
        expr = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col
        out = df.select(expr.dt.convert_time_zone("UTC").dt.epoch("us").alias(column))
        parsed = out.get_column(column)
    elif dtype == pl.Date:
        parsed = df.select(col.cast(pl.Datetime("us")).dt.epoch("us").alias(column))[column]
    elif dtype.is_numeric():
        # Numbers are Unix seconds.
        parsed = df.select((col.cast(pl.Float64) * 1_000_000).round().cast(pl.Int64))[column]
    else:
        raw = df.get_column(column).cast(pl.String)
        # Most logs write every time one way, and most of those as ISO 8601 in UTC: that
        # is read first, straight from the text; the formats below are tried only on what
        # it leaves (each format tried costs ~0.2 us a row).
        iso = _iso_times(raw)
        if iso is None:
            read = raw.str.to_datetime(ISO_UTC, strict=False, time_unit="us", time_zone="UTC")
            iso = read.dt.epoch("us")
        parsed = iso
        left = parsed.is_null().arg_true()
        blank = left
        if len(left):
            given = raw.gather(left)
            stripped = given.str.strip_chars()
            text = stripped.str.replace(r"[Zz]$", "+00:00")
            attempts = [
                text.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC")
                for f in TIME_FORMATS
            ]
            found = pl.select(pl.coalesce(attempts).dt.epoch("us")).to_series()
            empty = given.is_null() | (stripped == "")
            # What Polars' formats miss, Python's ISO 8601 reader may still read.
            missed = (found.is_null() & ~empty).arg_true()
            if len(missed):
                bad: list[tuple[int, str | None]] = []
                rows = df.get_column(ROW).gather(left.gather(missed)).to_list()
                values = given.gather(missed).to_list()
                fixed: list[int | None] = []
                for row, value in zip(rows, values, strict=True):
                    us = _python_time(value.strip())
                    fixed.append(us)
                    if us is None:
                        bad.append((row, value))
                chk.flag_rows(
                    bad,
                    column,
                    "is not a time (ISO 8601, e.g. 2026-01-05T10:00:00Z; UTC if no offset)",
                )
                found = found.scatter(missed, pl.Series(fixed, dtype=pl.Int64))
            parsed = parsed.scatter(left, found)
            blank = left.filter(empty)
    if required:
        if blank is not None:
            # Only text can be blank (and blank text is no time: among the rows left).
            rows = df.get_column(ROW).gather(blank).to_list()
            chk.flag_rows(zip(rows, raw.gather(blank).to_list(), strict=True), column, "is missing")
        else:
            chk.flag(pl.col(column).is_null(), column, "is missing")
    return parsed.alias(column)


def _per_value(df: pl.DataFrame, column: str, **exprs: pl.Expr) -> pl.DataFrame:
    """`exprs` (each reading `column`) per row of `df`, worked out once per distinct value:
    a column of few values (a channel, an outcome, a customer id) costs a lookup per row,
    not the text operations. Text results come as categoricals, as the timeline holds
    such columns: 4-byte codes, not text."""
    if df.schema[column] not in (pl.String, pl.Categorical):
        return df.select(**exprs).with_columns(pl.col(pl.String).cast(pl.Categorical))
    # Each row's value numbered (a categorical's codes), the distinct values' results
    # looked up by number: 1.5x quicker than finding the distinct text and joining on it.
    coded = df.get_column(column)
    if coded.dtype != pl.Categorical:
        coded = coded.cast(pl.Categorical)
    distinct = _present(coded)
    table = pl.DataFrame({column: distinct.cast(pl.String)}).with_columns(**exprs)
    out: dict[str, pl.Series] = {}
    looked_up: list[str] = []
    for name in exprs:
        result = table.get_column(name)
        if result.dtype == pl.String and result.equals(table.get_column(column)):
            # Left as it is (ids, kinds and names already clean, as most logs write
            # them): the coded column itself, nothing looked up.
            out[name] = coded.alias(name)
        elif result.n_unique() == 1:  # the same for every value (no blank ids, say)
            dtype = pl.Categorical if result.dtype == pl.String else result.dtype
            out[name] = pl.repeat(result[0], df.height, dtype=dtype, eager=True)
        else:
            looked_up.append(name)
    if looked_up:
        codes = distinct.to_physical()
        # By code, the place of its value in `table`; last, that of null (`fill` below).
        top = codes.max()
        place = np.zeros((0 if top is None else int(top)) + 2, dtype=np.uint32)  # type: ignore[arg-type]
        place[codes.fill_null(len(place) - 1).to_numpy()] = np.arange(len(distinct))
        at = pl.Series(place).gather(coded.to_physical().fill_null(len(place) - 1))
        texts = pl.col(pl.String).cast(pl.Categorical)
        found = table.select(looked_up).with_columns(texts)[at]
        out.update((name, found.get_column(name)) for name in looked_up)
    return pl.DataFrame([out[name].alias(name) for name in exprs], height=df.height)


def tallied_codes(physical: pl.Series) -> tuple[np.ndarray, int, bool] | None:
    """A categorical's codes (its `to_physical()`, or any small unsigned numbers) as
    they are tallied in a table of their own (`some_rows`, `renumbered`): nulls as the
    code after the largest, so that they come after every value; the table's size (the
    largest code + 1, and 1 more for nulls); whether there are nulls. None where the
    codes run past `TALLIED`. Writable: a read-only array is another type to numba."""
    top = physical.max()
    top = -1 if top is None else int(top)  # type: ignore[arg-type]
    if top >= TALLIED:
        return None
    nulls = physical.null_count() > 0
    codes = (physical.fill_null(top + 1) if nulls else physical).to_numpy(writable=True)
    return codes, top + 1 + nulls, nulls


def _present(coded: pl.Series) -> pl.Series:
    """A categorical's distinct values (and null, where a row has none), found on its
    codes (`some_rows`): Polars' `unique` took ~0.1 s for 7.7M rows, ~10x this (and
    takes codes past `TALLIED`, too many for a table)."""
    physical = coded.to_physical()
    if physical.null_count() == len(physical):  # no values: nulls at most
        return coded.head(1)
    tallied = tallied_codes(physical)
    if tallied is None:
        return coded.unique()
    codes, size, nulls = tallied
    used = np.flatnonzero(some_rows(codes, size) >= 0)
    values = used[:-1] if nulls else used  # the nulls' code left out
    distinct = pl.Series(coded.name, values.astype(np.uint32)).cat.to(coded.dtype)
    return distinct.extend(pl.Series(coded.name, [None], dtype=coded.dtype)) if nulls else distinct


def _names(chk: _Checker, df: pl.DataFrame, column: str, what: str) -> pl.Series:
    lowered = pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()
    per = _per_value(
        df,
        column,
        value=_text(df, column).str.to_lowercase(),
        blank=_blank(column),
        bad=~_blank(column) & ~lowered.str.contains(NAME),
    )
    chk.flag(per.get_column("blank"), column, "is missing")
    chk.flag(
        per.get_column("bad"),
        column,
        f"is not a {what} name (lowercase letters, digits and _, starting with a letter)",
    )
    return per.get_column("value").alias(column)


def _json_objects(chk: _Checker, column: str, *, text: bool = False) -> pl.Series:
    """A column of JSON objects (kept as text; blank: null), each distinct text checked
    once (a log's tags and properties repeat: a subject, an account, a page). `text`:
    their values must be text (or null), as a contact's tags are."""
    df = chk.df
    values = df.get_column(column).cast(pl.String)
    blank: list[str] = []
    bad: list[str] = []
    untyped: list[str] = []
    for value in values.unique().drop_nulls().to_list():
        if not value.strip():
            blank.append(value)
            continue
        try:
            data = json.loads(value)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            bad.append(value)
        elif text and not all(v is None or isinstance(v, str) for v in data.values()):
            untyped.append(value)
    for texts, message in (
        (bad, 'is not a JSON object (e.g. {"session_id": "s1"})'),
        (untyped, 'has a value that is not text (e.g. {"account": "A1"})'),
    ):
        if texts:
            rows = df.select(ROW, values.alias("_value")).filter(pl.col("_value").is_in(texts))
            chk.flag_rows(rows.iter_rows(), column, message)
    dropped = blank + bad + untyped
    return values.set(values.is_in(dropped), None) if dropped else values


def _customer_ids(chk: _Checker) -> pl.Series:
    """The file's customer ids, blank ones flagged, as a categorical (the sort numbers
    customers by its codes), stripped and checked once per distinct id (7.7M events:
    0.45 s of stripping and checking each row -> ~0.2 s)."""
    df = chk.df
    ids = _per_value(df, "customer_id", value=_text(df, "customer_id"), blank=_blank("customer_id"))
    chk.flag(ids.get_column("blank"), "customer_id", "is missing")
    return ids.get_column("value").alias("customer_id")


def _numbered(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def _contacts(df: pl.DataFrame, file: str) -> tuple[pl.DataFrame, list[BadRow]]:
    df = _numbered(df)
    chk = _Checker(df, file)
    ids = _customer_ids(chk)
    at_us = _times(chk, "at", required=True)
    trigger_at = _times(chk, "trigger_at", required=False)
    cols: list[pl.Expr | pl.Series] = [
        pl.col(ROW).alias("row"),
        ids,
        _names(chk, df, "channel", "channel"),
        _names(chk, df, "purpose", "purpose"),
    ]
    for name in ("trigger", "offer", "campaign", "source", "subject", "body", "flags"):
        if name in CATEGORICAL_COLUMNS and name in df.columns:
            # Stripped once per distinct value, a categorical as the timeline holds it.
            cols.append(_per_value(df, name, value=_text(df, name)).get_column("value").alias(name))
        else:
            cols.append(_text(df, name))
    if "outcome" in df.columns:
        outcome = pl.col("outcome").cast(pl.String).str.strip_chars().str.to_lowercase()
        per = _per_value(
            df,
            "outcome",
            value=_text(df, "outcome").str.to_lowercase(),
            bad=~_blank("outcome") & ~outcome.is_in(OUTCOMES),
        )
        chk.flag(per.get_column("bad"), "outcome", f"is not an outcome ({', '.join(OUTCOMES)})")
        cols.append(per.get_column("value").alias("outcome"))
    else:
        cols.append(_text(df, "outcome"))
    if "priority" in df.columns and df.schema["priority"].is_integer():
        # Typed (Parquet): nothing to read, nothing to check.
        cols.append(pl.col("priority").cast(pl.Int64).fill_null(0))
    elif "priority" in df.columns:
        number = pl.col("priority").cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
        chk.flag(~_blank("priority") & number.is_null(), "priority", "is not a whole number")
        cols.append(number.fill_null(0).alias("priority"))
    else:
        cols.append(pl.lit(0, dtype=pl.Int64).alias("priority"))
    if "discount" in df.columns and df.schema["discount"] == pl.Boolean:
        cols.append(pl.col("discount").fill_null(False))
    elif "discount" in df.columns:
        flag = pl.col("discount").cast(pl.String).str.strip_chars().str.to_lowercase()
        chk.flag(
            ~_blank("discount") & ~flag.is_in(TRUE + FALSE),
            "discount",
            "is not true or false",
        )
        cols.append(flag.is_in(TRUE).fill_null(False).alias("discount"))
    else:
        cols.append(pl.lit(False).alias("discount"))
    if "tags" in df.columns:
        tags = _json_objects(chk, "tags", text=True).alias("tags")
    else:
        tags = _nulls("tags", df.height, pl.String)
    out = df.select(cols).with_columns(at_us, trigger_at.alias("trigger_at_us"), tags)
    out = out.rename({"at": "at_us"}).with_columns(pl.lit(True).alias("is_contact"))
    return out, chk.bad


def _events(
    df: pl.DataFrame, file: str, side: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, list[BadRow]]:
    """`side`: the values of columns read apart (`read_apart`), nulls in `df`."""
    if side is not None and "properties" in df.columns:
        # Each row's properties merged one by one (below): every column whole.
        df = df.with_columns(
            _nulls(c, df.height, side.schema[c]).scatter(side.get_column(APART_ROW), side[c])
            for c in side.columns
            if c != APART_ROW
        )
        side = None
    if "event_id" not in df.columns and "messageId" in df.columns:
        df = df.rename({"messageId": "event_id"})
    df = _numbered(df)
    chk = _Checker(df, file)
    ids = _customer_ids(chk)
    kind = _per_value(df, "event", value=_text(df, "event"), blank=_blank("event"))
    chk.flag(kind.get_column("blank"), "event", "is missing")
    at_us = _times(chk, "at", required=True)
    core = {"customer_id", "at", "event", "event_id", "properties", ROW}
    extras = [c for c in df.columns if c not in core]
    session = _nulls("session_id", df.height, pl.String)
    if "properties" in df.columns:
        given = _json_objects(chk, "properties").to_list()
        extra_rows = df.select(extras).to_dicts() if extras else [{}] * df.height
        props: list[str | None] = []
        sessions: list[str | None] = []
        for text, more in zip(given, extra_rows, strict=True):
            merged = {
                **(json.loads(text) if text else {}),
                **{k: v for k, v in more.items() if v is not None},
            }
            props.append(json.dumps(merged, default=str) if merged else None)
            # As `_sessionize` keys it (`f"id:{sid}"`), read back from the JSON written.
            sid = merged.get("session_id")
            if sid is not None and not isinstance(sid, str | int | float):
                sid = json.loads(json.dumps(sid, default=str))
            sessions.append(None if sid is None else str(sid))
        properties = pl.Series("properties", props, dtype=pl.String)
        session = pl.Series("session_id", sessions, dtype=pl.String)
    elif extras:
        # Each property present as `"name":value` (its JSON as an object of one key, braces
        # off), the absent ones left out: no `"offer":null` kept for every row. Text
        # columns read from CSV: an empty cell is an absent property.
        def joined(rows: pl.DataFrame, kept: Sequence[int]) -> pl.Expr:
            """The JSON of the properties `kept` (places in `extras`) of `rows`."""
            if not kept:
                return pl.repeat(None, pl.len(), dtype=pl.String).alias("properties")
            members = [
                pl.when(~_blank(c) if rows.schema[c] == pl.String else pl.col(c).is_not_null())
                .then(_json_member(rows, c))
                .alias(c)
                for c in (extras[i] for i in kept)
            ]
            if len(kept) == 1:  # null where the property is absent
                return pl.concat_str(pl.lit("{"), members[0], pl.lit("}")).alias("properties")
            text = pl.concat_str(members, separator=",", ignore_nulls=True)
            whole = pl.concat_str(pl.lit("{"), text, pl.lit("}"))
            return pl.when(text == "").then(None).otherwise(whole).alias("properties")

        # The session id as the JSON holds it (a blank text is no property at all): two
        # values equal as text here where they are equal as `_sessionize` keys them.
        value = pl.repeat(None, pl.len(), dtype=pl.String)
        if "session_id" in extras:
            value = pl.col("session_id").cast(pl.String)
            if df.schema["session_id"] == pl.String:
                value = pl.when(_blank("session_id")).then(None).otherwise(value)
        # A property most events lack (an offer, a snooze's end) is written only where
        # present: the others' JSON is that of the rest, in the same order.
        sparse = [i for i, c in enumerate(extras) if 2 * df.get_column(c).null_count() > df.height]
        dense = [i for i in range(len(extras)) if i not in sparse]
        if [extras[i] for i in dense] == ["session_id"] and df.schema["session_id"] == pl.String:
            # A visit's id as text, on most events and their only property there: the
            # timeline's `session_id` holds it, no JSON (`timeline.event_properties`).
            dense = []
        # Lazily: Polars 2 runs it in batches, not a whole column per property at once.
        properties, session = (
            df.lazy().select(joined(df, dense), value.alias("session_id")).collect().get_columns()
        )
        if sparse:
            some = pl.any_horizontal(pl.col(extras[i]).is_not_null() for i in sparse)
            rows = df.select(some).to_series().arg_true()
            picked = df[rows]
            if side is not None:
                # The rows of the columns read apart too, their values in place of nulls.
                rows = pl.concat([rows, side.get_column(APART_ROW)]).unique().sort()
                at = rows.to_frame(APART_ROW).join(
                    side, on=APART_ROW, how="left", maintain_order="left"
                )
                picked = df[rows].with_columns(at.drop(APART_ROW))
            if len(rows):
                every = range(len(extras))
                whole = picked.lazy().select(joined(picked, every)).collect().to_series()
                properties = properties.scatter(rows, whole)
    else:
        properties = _nulls("properties", df.height, pl.String)
    out = df.select(
        pl.col(ROW).alias("row"),
        ids,
        kind.get_column("value").alias("event"),
        _text(df, "event_id"),
    ).with_columns(at_us.alias("at_us"), properties, session, pl.lit(False).alias("is_contact"))
    return out, chk.bad


#: What JSON escapes in a string: a quote, a backslash, a control character.
_ESCAPED = ['"', "\\", *map(chr, range(32))]


def _json_member(df: pl.DataFrame, column: str) -> pl.Expr:
    """`"column":value`, each row's value as JSON (Polars' `json_encode`, which is slow:
    a text column where nothing needs escaping, the usual case, is quoted as it is)."""
    plain = re.fullmatch(r"[ !#-\[\]-~]*", column) is not None  # printable ASCII, no " or \
    if plain and df.schema[column] == pl.String:
        # Literal characters, not a regular expression: 3-8x quicker; and only where there
        # are values (most events have no offer: 0.04 s -> 0.002 s over 7.7M rows).
        escapes = df.get_column(column).drop_nulls().str.contains_any(_ESCAPED).any()
        if not escapes:
            return pl.concat_str(pl.lit(f'"{column}":"'), pl.col(column), pl.lit('"'))
    encoded = pl.struct(column).struct.json_encode()
    return encoded.str.strip_prefix("{").str.strip_suffix("}")


def _profiles(df: pl.DataFrame, file: str) -> tuple[pl.DataFrame, list[BadRow]]:
    df = _numbered(df)
    chk = _Checker(df, file)
    chk.flag(_blank("customer_id"), "customer_id", "is missing")
    if "timezone" in df.columns:
        bad: list[tuple[int, str | None]] = []
        for row, zone in df.select(ROW, "timezone").iter_rows():
            if zone is None or not str(zone).strip():
                continue
            try:
                ZoneInfo(str(zone).strip())
            except (ZoneInfoNotFoundError, ValueError):
                bad.append((row, zone))
        chk.flag_rows(bad, "timezone", "is not an IANA time zone (e.g. America/Chicago)")
    if "country" in df.columns:
        country = pl.col("country").cast(pl.String).str.strip_chars()
        chk.flag(
            ~_blank("country") & ~country.str.contains(r"^[A-Za-z]{2}$"),
            "country",
            "is not a two-letter country code",
        )
    dupes = df.filter(pl.col("customer_id").is_duplicated() & ~_blank("customer_id"))
    chk.flag_rows(
        [(r, v) for r, v in dupes.select(ROW, "customer_id").iter_rows()][1:],
        "customer_id",
        "appears more than once (the first row is used)",
    )
    cols = [pl.col(ROW).alias("row"), _text(df, "customer_id")]
    cols += [_text(df, c) for c in ("timezone", "subdivision", "phones")]
    cols.append(_text(df, "country").str.to_uppercase())
    return df.select(cols), chk.bad


def _drop_bad(df: pl.DataFrame, bad: Sequence[BadRow]) -> pl.DataFrame:
    if not bad:
        return df
    rows = pl.Series("row", sorted({b.row for b in bad}), dtype=pl.Int64)
    return df.filter(~pl.col("row").is_in(rows.implode()))


Checked = tuple[pl.DataFrame, list[BadRow]]


#: An event log's columns never read apart (`read_apart`): what every event has, a JSON
#: object of properties, and a visit's id (which the timeline holds as a column).
READ_WHOLE = ("customer_id", "at", "event", "event_id", "messageId", "properties", "session_id")
#: Each log's columns of few values, which its checks read once per distinct value
#: (`_per_value`) and the timeline holds as categoricals.
FEW_VALUES = {
    "contacts": (
        "customer_id", "channel", "purpose", "trigger", "offer", "campaign", "source", "outcome",
        "flags",
    ),
    "events": ("customer_id", "event"),
}  # fmt: skip


def _load(
    path: str | Path,
    kind: str,
    required: Sequence[str],
    check: Callable[..., Checked],
    mapping: Mapping_,
) -> tuple[pl.DataFrame, list[BadRow], int]:
    """One log's good rows, checked by `check` (`_contacts`, `_events`, `_profiles`), its
    bad rows, and how many rows it had."""
    file = str(path)
    names = {**mapping.get("*", {}), **mapping.get(kind, {})}
    few = [names.get(c, c) for c in FEW_VALUES.get(kind, ())]
    side = None
    if kind == "events":
        # Properties most events lack read apart; what the mapping names, whole.
        raw, side = read_apart(path, few, whole={*READ_WHOLE, *names, *names.values()})
    else:
        raw = read_table(path, few)
    df = _apply_mapping(raw, kind, mapping, file)
    _require(df, required, file, kind)
    rows, bad = check(df, file) if side is None else check(df, file, side)
    return _drop_bad(rows, bad), bad, df.height


def rows_in_words(n: int, kind: str = "") -> str:
    """`n` rows, as words: "1 row", "2,000 bad rows"."""
    return f"{n:,} {kind}row{'' if n == 1 else 's'}"


def load_log(
    contacts: str | Path,
    events: str | Path | None = None,
    *,
    customers: str | Path | None = None,
    mapping: Mapping_ | None = None,
    strict: bool = False,
) -> Log:
    """Read, map and validate the logs into one timeline (see the module docstring)."""
    mapping = mapping or {}
    # The logs are read and checked side by side (Polars releases the GIL), the profiles
    # as soon as one of the two is done; an error in the contact log is reported first,
    # then the event log's, then the profiles', as when they were read one by one.
    with ThreadPoolExecutor(2) as pool:
        contact_part = pool.submit(
            _load, contacts, "contacts", CONTACT_REQUIRED, _contacts, mapping
        )
        event_part = None
        if events is not None:
            event_part = pool.submit(_load, events, "events", EVENT_REQUIRED, _events, mapping)
        profile_part = None
        if customers is not None:
            profile_part = pool.submit(
                _load, customers, "customers", CUSTOMER_REQUIRED, _profiles, mapping
            )
        contact_rows, bad, n_contacts = contact_part.result()
        frames = [contact_rows]
        n_events = 0
        if event_part is not None:
            event_rows, ebad, n_events = event_part.result()
            frames.append(event_rows)
            bad += ebad
        profiles: pl.DataFrame | None = None
        if profile_part is not None:
            profiles, pbad, _ = profile_part.result()
            profiles = profiles.unique("customer_id", keep="first").drop("row")
            bad += pbad
    if strict and bad:
        shown = "\n".join(f"  {b}" for b in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise InputError(f"{rows_in_words(len(bad), 'bad ')} (--strict):\n{shown}{more}")
    source = TimelineBuilder(frames, profiles)
    n_profiles = 0 if profiles is None else profiles.height
    return Log(source, bad, contacts=n_contacts, events=n_events, profiles=n_profiles)


def customer_bounds(customer_ids: pl.Series) -> np.ndarray:
    """Where each customer's rows begin in a timeline (whose rows are grouped by customer),
    and where the last one's end: customer i's rows are `bounds[i]:bounds[i + 1]`."""
    starts = (customer_ids != customer_ids.shift(1)).fill_null(True).arg_true().to_numpy()
    return np.append(starts, len(customer_ids)).astype(np.int64)


class Sorted(NamedTuple):
    """`sort_keys`' answer."""

    #: The rows' timeline order: the place in the given rows of each row in turn.
    order: pl.Series
    #: In that order, each row's customer as its place in `names`,
    customer: pl.Series
    #: the customers' distinct ids, sorted,
    names: pl.Series
    #: each row's instant,
    instants: pl.Series
    #: and where each customer's rows begin (customer i's are `starts[i]:starts[i + 1]`).
    starts: np.ndarray


def sort_keys(ids: pl.Series, instants: pl.Series) -> Sorted:
    """The timeline's order of rows with customer `ids` (text or a categorical, none
    null) and `instants` (`at_us * 2 + is_contact`: events before contacts at one
    instant), by customer, then instant, rows of equal keys in the order given; the
    customers' distinct ids, sorted (`names`); and, in that order, each row's customer as
    its place in `names`, its instant, and where each customer's rows begin.

    A log in time order, as most are, has each customer's rows scattered through it, and
    sorting by the text of their ids then costs ~0.6 us a row. The customers are
    numbered in the order of their ids instead (the distinct ids sorted, each row's
    looked up), and the rows bucketed by that number and merged by instant
    (`tactful.replay.order`; 10M rows in time order: 5.9 s sorted by text and instant,
    1.5 s numbered and sorted by Polars as one packed integer, 0.5-0.6 s so)."""
    if ids.null_count():
        raise ValueError("sort_keys: a row without a customer id")
    # Numbered by a categorical's codes (the loader's ids are one already), each code's id
    # read off one of its rows, then renumbered in the order of the ids.
    ids = ids.cast(pl.Categorical)
    physical = ids.to_physical()
    tallied = tallied_codes(physical)  # no nulls: checked above
    if tallied is None:
        # Codes past a table's reach (Polars numbers the categories of the whole process,
        # which may hold many others: earlier replays' verdicts, a visit's ids): the
        # log's own, numbered densely, so that the tables below hold its customers only.
        # Writable: a read-only array is another type to numba, compiled again.
        codes = (physical.rank("dense") - 1).cast(pl.UInt32).to_numpy(writable=True)
        size = int(codes.max()) + 1
    else:
        codes, size, _ = tallied
    some = some_rows(codes, size)
    used = np.flatnonzero(some >= 0)
    distinct = ids.gather(some[used]).cast(pl.String)
    by_id = distinct.arg_sort().to_numpy()
    names = distinct.gather(by_id)
    place = np.zeros(len(some), dtype=np.uint32)
    place[used[by_id]] = np.arange(len(used), dtype=np.uint32)
    at = instants.to_numpy(writable=True)
    order, ordered, customer, starts = timeline_order(codes, place, at, len(names))
    return Sorted(
        pl.Series("order", order),
        pl.Series("customer", customer),
        names,
        pl.Series("instant", ordered),
        starts,
    )


#: The Polars type of each of `timeline`'s type names (the timeline's and the verdicts').
POLARS_TYPES: dict[str, pl.DataType] = {
    "string": pl.String(),
    "int64": pl.Int64(),
    "bool": pl.Boolean(),
    "float64": pl.Float64(),
}
#: What the timeline holds where a contact gives no value.
_FILLED = {"discount": False, "priority": 0}
#: What a slice (`TimelineBuilder.frame`) may hold beside the timeline's columns: each
#: row's customer as its place among the log's ids (`TimelineBuilder.names`), a number
#: that tells customers apart where their ids' text is not needed.
CUSTOMER_CODE = "_customer"


def _timeline_type(name: str) -> Any:
    return pl.Categorical if name in CATEGORICAL_COLUMNS else POLARS_TYPES[TIMELINE_COLUMNS[name]]


class TimelineBuilder:
    """The checked contact and event rows (and profiles) in timeline order, built into the
    timeline schema whole (`full`) or a slice of whole customers at a time (`frame`).

    The rows are put in order by their keys alone (`sort_keys`), so no sorted copy of the
    whole log is made beside it; each column is then gathered from the one file that
    fills it. A replay that folds slice by slice builds each slice as it goes and never
    holds the whole table: a 10M-row log's timeline is ~1 GB, written once and read once,
    and fresh memory is dear (touching it costs more here than gathering into it). Text
    of few values (`CATEGORICAL_COLUMNS`) is categorical, 4 bytes a row where text takes
    16 even when null, and a column no row fills is nulls that take no memory at all."""

    def __init__(self, frames: Sequence[pl.DataFrame], profiles: pl.DataFrame | None) -> None:
        self._frames = list(frames)
        # No bad row dropped (row numbers rise, so each file's are 1, 2, ...): each row's
        # number is its place in its file, worked out from the order, not gathered.
        self._numbered = all(f.height == 0 or f.get_column("row")[-1] == f.height for f in frames)
        self._whole: pl.DataFrame | None = None
        joined = profiles is not None and profiles.height > 0
        keys = ("customer_id", "at_us", "is_contact", "row" if self._numbered else "")
        sources = [n for n in TIMELINE_COLUMNS if n not in keys]
        if joined:
            sources = [n for n in sources if n not in PROFILE_COLUMNS]
        with ThreadPoolExecutor(2) as pool:
            # Each column's source (`_source`) found while the rows are sorted: casting a
            # file's column (a visit's ids, text, to a categorical) runs on one thread,
            # beside the sort on another (Polars and the sort release the GIL).
            found = pool.map(self._source, sources)
            ids = pl.concat([f.get_column("customer_id").cast(pl.Categorical) for f in frames])
            instants = pl.concat(
                [
                    f.select(pl.col("at_us") * 2 + pl.col("is_contact").cast(pl.Int64))
                    for f in frames
                ]
            ).to_series()
            rows, customer, self.names, self._instant, starts = sort_keys(ids, instants)
            del ids, instants
            # Each column's source: the one file that fills it, its values as the timeline
            # holds them; several files' values, one after the other.
            self._one: dict[str, tuple[int, pl.Series, np.ndarray | None]] = {}
            self._many: dict[str, pl.Series] = {}
            #: What a column holds where its values do not reach (a contact's, an `add`ed
            #: column's).
            self._fill: dict[str, Any] = dict(_FILLED)
            #: `_plain`'s arrays, by column.
            self._plains: dict[str, np.ndarray | None] = {}
            for name, got in zip(sources, found, strict=True):
                if isinstance(got, tuple):
                    self._one[name] = got
                elif got is not None:
                    self._many[name] = got
        self.height = len(rows)
        self._customer = customer
        #: Where each customer's rows begin, and where the last one's end: customer i's
        #: rows are `starts[i]:starts[i + 1]`.
        self.starts = starts
        self._order = rows.to_numpy()
        self._first = np.cumsum([0] + [f.height for f in frames])
        # Each place's file, as one byte (a log has two files, or one): how many files'
        # rows come before its row.
        self._file = np.zeros(len(self._order), dtype=np.uint8)
        for first in self._first[1:-1]:
            self._file += self._order >= first
        # Each customer's profile: its row in `profiles` (none: nulls), looked up once per
        # customer, not once per row.
        self._per_customer: dict[str, pl.Series] = {}
        if joined:
            assert profiles is not None
            at = self.names.replace_strict(
                profiles.get_column("customer_id"),
                pl.int_range(profiles.height, eager=True),
                default=None,
                return_dtype=pl.Int64,
            )
            for name in PROFILE_COLUMNS:
                values = profiles.get_column(name)
                if values.null_count() < len(values):
                    self._per_customer[name] = values.cast(_timeline_type(name)).gather(at)

    def _source(self, name: str) -> tuple[int, pl.Series, np.ndarray | None] | pl.Series | None:
        """Where `name`'s values come from: (file, its values, which of them are not null
        if most are) where one file fills it, every file's values one after the other
        where several do, none where none do."""
        dtype = _timeline_type(name)

        def typed(f: pl.DataFrame) -> pl.Series:
            """A file's column as the timeline holds it (the loader's columns of few values
            are categoricals already); all null where the file has none."""
            if name not in f.columns:
                return _nulls(name, f.height, dtype)
            column = f.get_column(name)
            if column.dtype == dtype:
                return column
            column = column.cast(POLARS_TYPES[TIMELINE_COLUMNS[name]])
            # Text to a categorical cannot fail: cast without the strict check, for which
            # Polars copies the whole column into one piece to compare its nulls (7.7M
            # visit ids in 63 pieces: 0.49 -> 0.34 CPU-seconds, and 270 MB less memory).
            return column.cast(dtype, strict=dtype != pl.Categorical)

        filling = [
            j
            for j, f in enumerate(self._frames)
            if name in f.columns and f.get_column(name).null_count() < f.height
        ]
        if not filling:
            return None
        if len(filling) == 1:
            values = typed(self._frames[filling[0]])
            sparse = 2 * values.null_count() > len(values)
            return filling[0], values, values.is_not_null().to_numpy() if sparse else None
        # Categoricals cast first: gathering their 4-byte codes is quicker than text; and
        # each file's rows on their own, so a column only contacts have is not cast over
        # the events' nulls too.
        return pl.concat([typed(f) for f in self._frames])

    @property
    def period_us(self) -> tuple[int, int] | None:
        """The first and last instant of the log (epoch microseconds), if it has rows."""
        if not self.height:
            return None
        return int(self._instant.min()) // 2, int(self._instant.max()) // 2  # type: ignore[arg-type]

    def stacked(self, columns: Sequence[str]) -> pl.DataFrame:
        """These columns (of the files, not the profiles) of every row, each file's rows
        after the other's, not in timeline order: for what the order does not change,
        counts per customer, say, without building the timeline's."""
        if self._whole is not None:
            return self._whole.select(columns)
        return pl.concat(self.parts(columns), how="vertical_relaxed")

    def profiles(self, customers: pl.Series) -> pl.DataFrame:
        """The `PROFILE_COLUMNS` of `customers` (their places among `names`), as the
        timeline holds them on each one's first row (and every other)."""
        first = self.starts[customers.to_numpy()]
        if self._whole is not None:
            return self._whole.select(pl.col(PROFILE_COLUMNS).gather(first))
        return self._build(first, tuple(PROFILE_COLUMNS), threads=1)

    @property
    def heights(self) -> list[int]:
        """Each file's rows."""
        return [int(h) for h in np.diff(self._first)]

    @property
    def has_files(self) -> bool:
        """Whether the files' rows are still held (`parts`, `add`): until `full`."""
        return self._whole is None

    def parts(self, columns: Sequence[str]) -> list[pl.DataFrame]:
        """These columns of each file's rows (nulls where a file has no such column), in
        the files' order and their own, as `add` takes a column."""
        if not self.has_files:
            raise ValueError("TimelineBuilder.parts: the files were let go (full)")
        return [
            f.select(
                pl.col(c) if c in f.columns else _nulls(c, f.height, _timeline_type(c))
                for c in columns
            )
            for f in self._frames
        ]

    def add(
        self, name: str, values: pl.Series, *, file: int | None = None, fill: Any = None
    ) -> None:
        """A column of the files' rows (one after the other, as `parts` gives them) that
        slices (`frame`) may ask for by `name` beside the timeline's own: what is worked
        out once per log, not per slice. With `file`, `values` are that file's rows
        alone, and the other files' rows hold `fill` (a slice gathers only that file's:
        a contact's shape, say, is not gathered for every event)."""
        if not self.has_files:
            raise ValueError("TimelineBuilder.add: the files were let go (full)")
        rows = self._first[-1] if file is None else self._frames[file].height
        if len(values) != rows:
            raise ValueError(f"TimelineBuilder.add: {len(values)} values for {rows} rows")
        self._fill[name] = fill
        self._plains.pop(name, None)
        if file is None:
            self._many[name] = values.alias(name)
        else:
            self._one[name] = (file, values.alias(name), None)

    def _plain(self, name: str) -> np.ndarray | None:
        """A one-file column's values as numpy holds them, where they are integers with
        no null and a fill for the other files' rows (made once, then kept)."""
        if name not in self._plains:
            _, values, _ = self._one[name]
            plain = (
                self._fill.get(name) is not None
                and values.dtype.is_integer()
                and values.null_count() == 0
            )
            # Writable however Polars holds them: a read-only array is another type to
            # numba (`spread`), compiled again.
            self._plains[name] = values.to_numpy(writable=True) if plain else None
        return self._plains[name]

    def full(self) -> pl.DataFrame:
        """The whole timeline (built once, then kept: the log's files are let go)."""
        if self._whole is None:
            self._whole = self._build(slice(0, self.height), tuple(TIMELINE_COLUMNS), threads=2)
            self._frames = []
            self._one, self._many, self._plains = {}, {}, {}
        return self._whole

    def frame(
        self, offset: int = 0, length: int | None = None, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """`full().slice(offset, length).select(columns)`, built without the rest; the
        columns may also name `CUSTOMER_CODE` and what `add` added (while the files are
        held)."""
        columns = tuple(TIMELINE_COLUMNS) if columns is None else tuple(columns)
        stop = self.height if length is None else min(self.height, offset + length)
        if self._whole is not None:
            whole = self._whole.slice(offset, stop - offset)
            if CUSTOMER_CODE in columns:
                code = self._customer.slice(offset, stop - offset).alias(CUSTOMER_CODE)
                whole = whole.with_columns(code)
            return whole.select(columns)
        return self._build(slice(offset, stop), columns, threads=1)

    def _build(
        self, rows: slice | np.ndarray, columns: tuple[str, ...], threads: int
    ) -> pl.DataFrame:
        """The timeline's rows at `rows`: a slice of its places, or places."""
        order, file = self._order[rows], self._file[rows]
        n = len(order)
        if isinstance(rows, slice):
            customer = self._customer.slice(rows.start, n)
            instant = self._instant.slice(rows.start, n)
        else:
            customer, instant = self._customer.gather(rows), self._instant.gather(rows)
        # Per file, the places its rows went (`at`) and each one's row in it (`src`), as
        # Polars indices: made for the files a column is gathered from, once.
        places: dict[int, tuple[pl.Series, pl.Series]] = {}
        indices: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for j in {self._one[name][0] for name in columns if name in self._one}:
            at = np.flatnonzero(file == j)
            src = order[at] - self._first[j]
            indices[j] = (at, src)
            places[j] = (pl.Series(at, dtype=pl.UInt32), pl.Series(src, dtype=pl.UInt32))

        def ordered(name: str) -> pl.Series:
            if name == "customer_id":
                return self.names.gather(customer).alias(name)
            if name == CUSTOMER_CODE:
                return customer.alias(name)
            # The keys as the sort put them in order, not gathered again.
            if name == "at_us":
                return (instant // 2).alias(name)
            if name == "is_contact":
                return (instant % 2 == 1).alias(name)
            if name == "row" and self._numbered:
                return pl.Series(name, order - self._first[file] + 1)
            if name in self._per_customer:
                return self._per_customer[name].gather(customer).alias(name)
            if name in self._one:
                # A column only one file fills (most of them: the events' or the
                # contacts'), gathered from that file alone: a third of the time for text.
                j, values, given = self._one[name]
                numbers = self._plain(name)
                if numbers is not None:
                    # Numbers without nulls, filled where the file does not reach (a
                    # log's codes, `add`): spread in one compiled pass, not Polars' nulls
                    # scattered and filled (a 500,000-row slice's columns: ~40 -> ~34 ms)
                    # nor numpy's gather, then scatter (7.4 -> 3.3 ms a column).
                    out = np.full(n, self._fill[name], dtype=numbers.dtype)
                    at, src = indices[j]
                    spread(out, at, numbers, src)
                    return pl.Series(name, out)
                column = _spread(values, *places[j], n, given)
            elif name in self._many:
                column = self._many[name].gather(pl.Series(order))
            else:
                column = _nulls(name, n, _timeline_type(name))
            fill = self._fill.get(name)
            return column if fill is None else column.fill_null(fill)

        if threads > 1:
            with ThreadPoolExecutor(threads) as pool:
                built = list(pool.map(ordered, columns))
        else:
            built = [ordered(name) for name in columns]
        return pl.DataFrame(built)
