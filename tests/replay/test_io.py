"""Reading logs: formats, column mapping, and every bad row reported with file, row and
column, left out (or fatal under --strict), never dropped silently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from unittest.mock import patch

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tactful.replay.io import (
    APART_ROW,
    CUSTOMER_CODE,
    PROFILE_COLUMNS,
    READ_WHOLE,
    InputError,
    Log,
    load_log,
    parse_mapping,
    read_apart,
    read_table,
)
from tactful.replay.synthetic import write_log
from tactful.replay.timeline import (
    CATEGORICAL_COLUMNS,
    TIMELINE_COLUMNS,
    event_properties,
    items_of,
    to_datetime,
)
from tests.replay.conftest import LogBuilder, write_csv


def _load(log: LogBuilder, *, strict: bool = False) -> Log:
    contacts, events, customers = log.write()
    return load_log(contacts, events, customers=customers, strict=strict)


def test_reads_csv_and_orders_each_customer_by_time(log: LogBuilder) -> None:
    log.contact("b", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("a", "2026-03-02T12:00:00+01:00", "email", "marketing")
    log.event("a", "2026-03-02 11:00:00", "page_viewed", session_id="s1")
    loaded = _load(log)
    t = loaded.timeline
    assert t.get_column("customer_id").to_list() == ["a", "a", "b"]
    # +01:00 is converted; a time without an offset is UTC; the event comes first.
    assert [to_datetime(us) for us in t.get_column("at_us")] == [
        datetime(2026, 3, 2, 11, tzinfo=UTC),
        datetime(2026, 3, 2, 11, tzinfo=UTC),
        datetime(2026, 3, 2, 10, tzinfo=UTC),
    ]
    assert t.get_column("is_contact").to_list() == [False, True, True]
    first = t.row(0, named=True)
    assert (first["properties"], first["session_id"]) == (None, "s1")
    assert event_properties(first["properties"], first["session_id"]) == {"session_id": "s1"}
    assert loaded.bad_rows == []
    assert (loaded.contacts, loaded.events) == (2, 1)


def test_each_row_keeps_its_number_in_its_file(log: LogBuilder) -> None:
    """With no bad row left out, rows are numbered from their place in the order (with
    some, gathered: `test_bad_rows_are_reported_with_file_row_and_column`)."""
    log.contact("b", "2026-03-02T10:00:00Z", "email", "marketing", campaign="c1")
    log.contact("a", "2026-03-02T09:00:00Z", "email", "marketing", campaign="c2")
    log.contact("b", "2026-03-02T08:00:00Z", "email", "marketing", campaign="c3")
    log.event("b", "2026-03-02T09:30:00Z", "page_viewed", session_id="e1")
    log.event("a", "2026-03-02T07:00:00Z", "page_viewed", session_id="e2")
    t = _load(log).timeline
    got = t.select(
        "is_contact", "row", pl.coalesce(pl.col("campaign", "session_id").cast(pl.String))
    )
    assert got.rows() == [
        (False, 2, "e2"),
        (True, 2, "c2"),
        (True, 3, "c3"),
        (False, 1, "e1"),
        (True, 1, "c1"),
    ]


def test_customer_ids_are_read_without_the_spaces_around_them(log: LogBuilder) -> None:
    log.contact(" b ", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("b", "2026-03-02T09:00:00Z", "email", "marketing")
    log.contact("a", "2026-03-02T08:00:00Z", "email", "marketing")
    log.event("b\t", "2026-03-02T09:30:00Z", "page_viewed")
    log.event("a", "2026-03-02T07:00:00Z", "page_viewed")
    log.event(" ", "2026-03-02T07:00:00Z", "page_viewed")
    loaded = _load(log)
    t = loaded.timeline
    assert t.get_column("customer_id").to_list() == ["a", "a", "b", "b", "b"]
    assert t.get_column("row").to_list() == [2, 3, 2, 1, 1]
    assert [(b.row, b.column) for b in loaded.bad_rows] == [(3, "customer_id")]
    assert t.get_column("customer_id").dtype == pl.String


def test_reads_typed_parquet(tmp_path: Path) -> None:
    contacts = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "at": pl.Series([datetime(2026, 3, 2, 10)] * 2).dt.replace_time_zone("Europe/Paris"),
            "channel": ["email", "sms"],
            "purpose": ["marketing", "service"],
            "priority": pl.Series([3, None], dtype=pl.UInt8),  # typed: taken as it is
            "discount": [True, None],
        }
    )
    events = pl.DataFrame(
        {"customer_id": ["a"], "at": [1_772_442_000.0], "event": ["signed_in"], "n": [2]}
    )
    contacts.write_parquet(tmp_path / "c.parquet")
    events.write_parquet(tmp_path / "e.parquet")
    t = load_log(tmp_path / "c.parquet", tmp_path / "e.parquet").timeline
    contact = t.filter(pl.col("is_contact")).row(0, named=True)
    assert to_datetime(contact["at_us"]) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert (contact["priority"], contact["discount"]) == (3, True)
    second = t.filter(pl.col("customer_id") == "b").row(0, named=True)
    assert (second["priority"], second["discount"]) == (0, False)
    event = t.filter(~pl.col("is_contact")).row(0, named=True)
    assert to_datetime(event["at_us"]) == datetime.fromtimestamp(1_772_442_000, UTC)
    assert event["properties"] == '{"n":2}'


def test_parquet_reads_as_csv_does_its_few_valued_columns_decoded_to_codes(
    log: LogBuilder, tmp_path: Path
) -> None:
    # Text to strip and lowercase, blanks and bad names: Parquet's few-valued columns
    # (`FEW_VALUES`), read as categoricals, are checked and cleaned as CSV's text is, a
    # mapped name included.
    log.contact(" a ", "2026-03-02T10:00:00Z", " Email ", "marketing", campaign=" spring")
    log.contact("", "2026-03-02T10:00:00Z", "email", "marketing", outcome="bounced")
    log.contact("b", "2026-03-02T11:00:00Z", "e mail", "marketing", outcome="Replied ")
    log.contact("b", "2026-03-02T12:00:00Z", "sms", "sales", outcome="lost", flags="x;y")
    log.event(" a", "2026-03-02T09:00:00Z", "page_viewed", session_id="s1")
    log.event("b", "2026-03-02T09:00:00Z", " ")
    log.event("", "2026-03-02T09:30:00Z", "Signed_In")
    csv_contacts, csv_events, _ = log.write()
    files = {}
    for kind, path in (("contacts", csv_contacts), ("events", csv_events)):
        frame = pl.read_csv(path, infer_schema=False).rename({"customer_id": "user"})
        files[kind] = (
            write_csv(tmp_path / f"{kind}.csv", frame.columns, frame.to_dicts()),
            tmp_path / f"{kind}.parquet",
        )
        frame.write_parquet(files[kind][1])
    mapping = parse_mapping(["customer_id=user"])
    text = load_log(files["contacts"][0], files["events"][0], mapping=mapping)
    coded = load_log(files["contacts"][1], files["events"][1], mapping=mapping)
    assert pl.read_parquet_schema(files["contacts"][1])["channel"] == pl.String
    assert_frame_equal(text.timeline, coded.timeline)
    shown = [str(b).replace(".csv", ".parquet") for b in text.bad_rows]
    assert shown == [str(b) for b in coded.bad_rows]
    assert {(b.row, b.column) for b in coded.bad_rows} == {
        (2, "customer_id"), (3, "channel"), (4, "outcome"), (2, "event"), (3, "customer_id")
    }  # fmt: skip


@pytest.mark.parametrize("dictionary", [True, False], ids=["dictionaries", "plain"])
def test_few_valued_parquet_columns_are_read_as_their_dictionaries_say(
    tmp_path: Path, dictionary: bool
) -> None:
    """`read_table`'s categoricals read by Arrow from a file's dictionaries (each row
    group its own, with values the others lack, and nulls) or from plain-encoded text
    hold what Polars' cast of the text holds; a column already categorical, a number
    named as few-valued and the columns not named come as Polars reads them; a folder
    of files (Polars' cast) gives the same."""
    import pyarrow.parquet as pq

    n = 5000
    frame = pl.DataFrame(
        {
            "customer_id": [f"c{(i * 7919) % 1300}" if i % 97 else None for i in range(n)],
            "channel": [["email", "sms", "call"][i % 3] if i < 3000 else "push" for i in range(n)],
            "kind": pl.Series([f"k{i % 4}" for i in range(n)], dtype=pl.Categorical),
            "priority": [i % 5 for i in range(n)],
            "note": [f"n{i}" for i in range(n)],
        }
    )
    folder = tmp_path / "parts"
    folder.mkdir()
    file = folder / "log.parquet"
    pq.write_table(frame.to_arrow(), file, row_group_size=1000, use_dictionary=dictionary)
    assert pq.ParquetFile(file).metadata.num_row_groups == 5
    few = ["customer_id", "channel", "kind", "priority", "missing"]
    read = read_table(file, few)
    cast = ["customer_id", "channel"]
    expected = pl.read_parquet(file).with_columns(pl.col(cast).cast(pl.Categorical))
    assert read.schema == expected.schema
    assert read.schema["channel"] == pl.Categorical and read.schema["note"] == pl.String
    assert_frame_equal(read, expected, categorical_as_str=True)
    assert_frame_equal(read_table(folder, few), expected, categorical_as_str=True)


def _events_frame(n: int, properties: bool) -> pl.DataFrame:
    """Events with a visit's id on most, a property on half (`plan`, not sparse) and
    properties few have (`offer`, an escaped `note`, a number `until_days`)."""
    rows = []
    for i in range(n):
        row: dict[str, object] = {
            "customer_id": f"c{i % 7}",
            "at": f"2026-03-02T{9 + i // 60:02d}:{i % 60:02d}:00Z",
            "event": "offer_declined" if i % 11 == 0 else "page_viewed",
            "session_id": f"s{i // 5}" if i % 13 else None,
            "plan": "gold" if i % 2 else None,
            "offer": "premium" if i % 11 == 0 else None,
            "note": 'said "no"\n' if i % 17 == 0 else None,
            "until_days": i if i % 19 == 0 else None,
        }
        if properties:
            row["properties"] = '{"size": 3}' if i % 23 == 0 else None
        rows.append(row)
    return pl.DataFrame(rows, schema_overrides={"until_days": pl.Int64})


@pytest.mark.parametrize(
    "properties, mapped", [(False, False), (True, False), (False, True)],
    ids=["apart", "with-json-properties", "mapped"],
)  # fmt: skip
def test_properties_few_events_have_are_read_apart_as_a_whole_read_gives_them(
    tmp_path: Path, properties: bool, mapped: bool
) -> None:
    """An event log's Parquet columns that its statistics show mostly null are read only
    where they have values (`read_apart`); the timeline is the one read from the same
    file without statistics, every column whole: JSON properties merged in, a mapped
    name (read whole) as well."""
    frame = _events_frame(300, properties)
    if mapped:
        frame = frame.rename({"offer": "their_offer"})
    contacts = write_csv(
        tmp_path / "c.csv",
        ["customer_id", "at", "channel", "purpose"],
        [{"customer_id": "c1", "at": "2026-03-02T12:00:00Z", "channel": "email",
          "purpose": "marketing"}],
    )  # fmt: skip
    whole, apart = tmp_path / "whole.parquet", tmp_path / "apart.parquet"
    frame.write_parquet(whole, statistics=False, row_group_size=64)
    frame.write_parquet(apart, row_group_size=64)
    assert read_apart(whole, whole=READ_WHOLE)[1] is None  # no null counts to go by
    side = read_apart(apart, whole=READ_WHOLE)[1]
    assert side is not None
    assert set(side.columns) == {APART_ROW, "note", "until_days", "their_offer" if mapped
                                 else "offer"}  # fmt: skip
    some = pl.any_horizontal(pl.col(c).is_not_null() for c in side.columns[1:])
    assert side.height == frame.select(some).to_series().sum() < len(frame) // 4
    mapping = parse_mapping(["events.offer=their_offer"] if mapped else [])
    want = load_log(contacts, whole, mapping=mapping)
    got = load_log(contacts, apart, mapping=mapping)
    assert_frame_equal(got.timeline, want.timeline)
    assert got.bad_rows == [] and want.bad_rows == []
    props = [json.loads(p) for p in got.timeline.get_column("properties").drop_nulls()]
    first = {"offer": "premium", "note": 'said "no"\n', "until_days": 0}
    assert (first | {"size": 3} if properties else first) in props
    assert {"session_id": "s3", "plan": "gold", "until_days": 19} in props
    if properties:
        assert {"session_id": "s50", "offer": "premium", "size": 3, "plan": "gold"} in props


def test_column_mapping(tmp_path: Path) -> None:
    contacts = write_csv(
        tmp_path / "c.csv",
        ["user", "sent_at", "medium", "goal"],
        [{"user": "a", "sent_at": "2026-03-02T10:00:00Z", "medium": "email", "goal": "sales"}],
    )
    events = write_csv(
        tmp_path / "e.csv",
        ["user", "timestamp", "type"],
        [{"user": "a", "timestamp": "2026-03-02T09:00:00Z", "type": "opted_out"}],
    )
    mapping = parse_mapping(
        [
            "customer_id=user,channel=medium",
            "purpose=goal",
            "contacts.at=sent_at",
            "events.at=timestamp,events.event=type",
        ]
    )
    loaded = load_log(contacts, events, mapping=mapping, strict=True)
    assert loaded.timeline.get_column("event").to_list() == ["opted_out", None]
    assert loaded.timeline.get_column("channel").to_list() == [None, "email"]


def test_a_missing_column_names_file_column_and_the_fix(tmp_path: Path) -> None:
    contacts = write_csv(tmp_path / "c.csv", ["customer_id", "when", "channel", "purpose"], [])
    with pytest.raises(InputError) as exc:
        load_log(contacts)
    message = str(exc.value)
    assert "c.csv" in message and "'at'" in message and "--map contacts.at=" in message


def test_with_both_logs_wrong_the_contact_log_is_named_first(tmp_path: Path) -> None:
    """The logs are read side by side; the error is still the one reading them in turn
    would give, whichever is read sooner."""
    contacts = write_csv(tmp_path / "c.csv", ["customer_id", "when", "channel", "purpose"], [])
    events = write_csv(tmp_path / "e.csv", ["customer_id", "when", "event"], [])
    with pytest.raises(InputError, match=r"c\.csv"):
        load_log(contacts, events)
    good = write_csv(tmp_path / "ok.csv", ["customer_id", "at", "channel", "purpose"], [])
    with pytest.raises(InputError, match=r"e\.csv"):
        load_log(good, events)


def test_a_mapping_to_a_column_that_is_not_there(tmp_path: Path) -> None:
    contacts = write_csv(tmp_path / "c.csv", ["customer_id", "at", "channel", "purpose"], [])
    with pytest.raises(InputError, match="no column 'sent'"):
        load_log(contacts, mapping=parse_mapping(["contacts.at=sent"]))


def test_bad_mapping_syntax() -> None:
    with pytest.raises(InputError, match="COLUMN=NAME_IN_FILE"):
        parse_mapping(["at"])


def bad_log(log: LogBuilder) -> LogBuilder:
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")  # fine
    log.contact("", "2026-03-02T10:00:00Z", "email", "marketing")  # 2: no customer
    log.contact("a", "yesterday", "email", "marketing")  # 3: bad time
    log.contact("a", "2026-03-02T10:00:00Z", "e-mail", "marketing")  # 4: bad channel
    log.contact("a", "2026-03-02T10:00:00Z", "email", "", outcome="opened")  # 5: two problems
    log.contact("a", "2026-03-02T10:00:00Z", "email", "sales", priority="high")  # 6
    log.contact("a", "2026-03-02T10:00:00Z", "email", "sales", discount="maybe")  # 7
    log.contact("a", "2026-03-02T11:00:00", "EMAIL", " Sales ", outcome="Replied")  # fine
    log.event("a", "2026-03-02T09:00:00Z", "")  # events row 1: no kind
    log.event("a", "2026-03-02T09:00:00Z", "signed_in")  # fine
    return log


def test_bad_rows_are_reported_with_file_row_and_column(log: LogBuilder) -> None:
    loaded = _load(bad_log(log))
    got = sorted((Path(b.file).name, b.row, b.column) for b in loaded.bad_rows)
    assert got == [
        ("contacts.csv", 2, "customer_id"),
        ("contacts.csv", 3, "at"),
        ("contacts.csv", 4, "channel"),
        ("contacts.csv", 5, "outcome"),
        ("contacts.csv", 5, "purpose"),
        ("contacts.csv", 6, "priority"),
        ("contacts.csv", 7, "discount"),
        ("events.csv", 1, "event"),
    ]
    # Left out of the replay, and nothing else is.
    t = loaded.timeline
    assert sorted(t.filter(pl.col("is_contact")).get_column("row").to_list()) == [1, 8]
    assert t.filter(~pl.col("is_contact")).get_column("row").to_list() == [2]
    normalised = t.filter(pl.col("row") == 8).row(0, named=True)
    assert (normalised["channel"], normalised["purpose"], normalised["outcome"]) == (
        "email",
        "sales",
        "replied",
    )
    text = str(next(b for b in loaded.bad_rows if b.column == "at"))
    assert "contacts.csv row 3, column 'at': 'yesterday' is not a time" in text
    assert loaded.bad_rows_frame().height == 8


def test_strict_makes_bad_rows_fatal(log: LogBuilder) -> None:
    with pytest.raises(InputError) as exc:
        _load(bad_log(log), strict=True)
    assert "8 bad rows (--strict)" in str(exc.value)
    assert "contacts.csv row 3, column 'at'" in str(exc.value)


def test_tags_and_properties_that_are_not_json_objects_are_bad_rows(log: LogBuilder) -> None:
    # Each distinct text is checked once; every row holding a bad one is reported, in
    # order; a blank one is no tags at all.
    tags = ['{"subject": "loans"}', "[1, 2]", "   ", '{"subject": "loans"}', "not json", "[1, 2]"]
    tags.append('{"subject": 7, "account": null}')  # tags are text (or null)
    for i, text in enumerate(tags):
        log.contact("a", f"2026-03-02T1{i}:00:00Z", "sms", "sales", tags=text)
    log.event("a", "2026-03-02T09:00:00Z", "signed_in", properties='{"page": "home"}')
    log.event("a", "2026-03-02T09:01:00Z", "signed_in", properties='"home"')
    loaded = _load(log)
    got = [(Path(b.file).name, b.row, b.column, b.value) for b in loaded.bad_rows]
    assert got == [
        ("contacts.csv", 2, "tags", "[1, 2]"),
        ("contacts.csv", 5, "tags", "not json"),
        ("contacts.csv", 6, "tags", "[1, 2]"),
        ("contacts.csv", 7, "tags", '{"subject": 7, "account": null}'),
        ("events.csv", 2, "properties", '"home"'),
    ]
    assert "is not a JSON object" in str(loaded.bad_rows[0])
    assert "has a value that is not text" in str(loaded.bad_rows[3])
    contacts = loaded.timeline.filter(pl.col("is_contact")).sort("row")
    assert contacts.get_column("row").to_list() == [1, 3, 4]
    assert contacts.get_column("tags").to_list() == [
        '{"subject": "loans"}',
        None,
        '{"subject": "loans"}',
    ]


def test_properties_json_and_columns_merge(tmp_path: Path) -> None:
    contacts = write_csv(tmp_path / "c.csv", ["customer_id", "at", "channel", "purpose"], [])
    events = write_csv(
        tmp_path / "e.csv",
        ["customer_id", "at", "event", "properties", "session_id", "messageId"],
        [
            {
                "customer_id": "a",
                "at": "2026-03-02T09:00:00Z",
                "event": "offer_declined",
                "properties": '{"offer": "gold"}',
                "session_id": "s1",
                "messageId": "m1",
            },
            {
                "customer_id": "a",
                "at": "2026-03-02T09:00:00Z",
                "event": "offer_declined",
                "properties": "[1, 2]",
                "session_id": "",
                "messageId": "",
            },
        ],
    )
    loaded = load_log(contacts, events)
    assert [(b.row, b.column) for b in loaded.bad_rows] == [(2, "properties")]
    row = loaded.timeline.row(0, named=True)
    assert row["properties"] == '{"offer": "gold", "session_id": "s1"}'
    assert row["event_id"] == "m1"
    assert row["session_id"] == "s1"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('{"session_id": "s1"}', "s1"),
        ('{"session_id": 5}', "5"),  # as `_sessionize` keys it: f"id:{sid}"
        ('{"session\\u005fid": "\\u00e9"}', "é"),
        ('{"session_id": null}', None),  # no visit key at all
        ('{"context": {"session_id": "s1"}}', None),  # not the event's own
        ("", None),
    ],
)
def test_the_session_id_column_is_the_property_visits_are_keyed_by(
    tmp_path: Path, given: str, expected: str | None
) -> None:
    contacts = write_csv(tmp_path / "c.csv", ["customer_id", "at", "channel", "purpose"], [])
    row = {"customer_id": "a", "at": "2026-03-02T09:00:00Z", "event": "page_viewed"}
    events = write_csv(
        tmp_path / "e.csv",
        ["customer_id", "at", "event", "properties"],
        [{**row, "properties": given}],
    )
    assert load_log(contacts, events).timeline.get_column("session_id").to_list() == [expected]
    # From a column of its own: a blank cell is no property.
    for value, expected_value in (("s2", "s2"), (" ", None)):
        path = write_csv(tmp_path / "e2.csv", ["customer_id", "at", "event", "session_id"],
                         [{**row, "session_id": value}])  # fmt: skip
        timeline = load_log(contacts, path).timeline
        assert timeline.get_column("session_id").to_list() == [expected_value]


def test_customers_file(log: LogBuilder) -> None:
    log.contact("a", "2026-03-02T10:00:00Z", "call", "service")
    log.contact("b", "2026-03-02T10:00:00Z", "call", "service")
    log.profile("a", timezone="America/Chicago", country="us", phones="+13125550142")
    log.profile("b", timezone="Mars/Olympus", country="USA")
    log.profile("a", timezone="Europe/Paris")
    loaded = _load(log)
    assert sorted((b.row, b.column) for b in loaded.bad_rows) == [
        (2, "country"),
        (2, "timezone"),
        (3, "customer_id"),
    ]
    rows = loaded.timeline.select("customer_id", "timezone", "country", "phones").rows()
    assert rows == [("a", "America/Chicago", "US", "+13125550142"), ("b", None, None, None)]


def test_unknown_formats_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(InputError, match="unknown format"):
        load_log(tmp_path / "c.json")
    with pytest.raises(InputError, match="no such file"):
        load_log(tmp_path / "nope.csv")


def test_the_timeline_is_held_compactly(log: LogBuilder) -> None:
    """Text of few values as categoricals, absent properties left out of the JSON, and
    columns no row fills as nulls: the same values, in less memory."""
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing", source="crm")
    log.event("a", "2026-03-02T09:00:00Z", "page_viewed", session_id="s1")
    log.event("a", "2026-03-02T09:05:00Z", "offer_declined", offer="gold")
    log.event("a", "2026-03-02T09:06:00Z", "signed_in")
    log.profile("a", timezone="America/Chicago")
    t = _load(log).timeline
    assert list(t.columns) == list(TIMELINE_COLUMNS)
    categorical = {name for name, dtype in t.schema.items() if dtype == pl.Categorical}
    assert categorical == CATEGORICAL_COLUMNS
    assert t.get_column("event").to_list() == ["page_viewed", "offer_declined", "signed_in", None]
    assert t.get_column("source").to_list() == [None, None, None, "crm"]
    assert t.get_column("timezone").to_list() == ["America/Chicago"] * 4
    assert t.get_column("properties").to_list() == [
        '{"session_id":"s1"}',
        '{"offer":"gold"}',
        None,
        None,
    ]
    for empty in ("event_id", "trigger_at_us", "tags", "subdivision", "phones"):
        assert t.get_column(empty).null_count() == t.height
    assert (t.get_column("discount").to_list(), t.get_column("priority").to_list()) == (
        [False] * 4,
        [0] * 4,
    )


@pytest.mark.parametrize(
    "values",
    [
        ["s1", "é", "😀", "\u2028", "\x7f", " padded ", None],  # quoted as they are
        ["s1", 'a "quote"', None],  # a column that needs escaping: Polars' encoder
        ["s1", "back\\slash", "tab\there", None],
    ],
)
def test_properties_from_columns_are_the_json_of_their_values(values: list[str | None]) -> None:
    from tactful.replay.io import _json_member

    df = pl.DataFrame({"session_id": values, 'weird "name': values})
    for column in df.columns:
        got = df.select(_json_member(df, column)).to_series().to_list()
        for value, member in zip(values, got, strict=True):
            if value is not None:
                assert json.loads("{" + member + "}") == {column: value}
                expected = df.select(pl.struct(pl.lit(value).alias(column)).struct.json_encode())
                assert member == expected.item()[1:-1]


def test_properties_keep_the_columns_order_where_some_are_rare(log: LogBuilder) -> None:
    # `offer` on one event in four (written only where present), `session_id` on all.
    for k in range(4):
        props = {"offer": "gold"} if k == 2 else {}
        log.event("a", f"2026-03-02T09:0{k}:00Z", "page_viewed", **props, session_id=f"s{k}")
    t = _load(log).timeline
    # A visit's id alone is the `session_id` column's (no JSON); with more, in the JSON.
    assert t.get_column("properties").to_list() == [
        None,
        None,
        '{"offer":"gold","session_id":"s2"}',
        None,
    ]
    props = [event_properties(*r) for r in t.select("properties", "session_id").iter_rows()]
    assert props == [
        {"session_id": "s0"},
        {"session_id": "s1"},
        {"offer": "gold", "session_id": "s2"},
        {"session_id": "s3"},
    ]
    assert list(props[2]) == ["offer", "session_id"]
    events = items_of({c: t.get_column(c).to_list() for c in t.columns}, 0, t.height)
    assert [e.properties for e in events] == props  # type: ignore[union-attr]


def test_a_visits_id_stays_in_the_json_beside_other_properties_on_every_event(
    tmp_path: Path,
) -> None:
    events = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "at": [datetime(2026, 3, 2, 9, k) for k in range(3)],
            "event": ["page_viewed"] * 3,
            "page": ["/", "/cart", "/"],
            "session_id": ["s0", "", "s2"],
        }
    )
    contacts = pl.DataFrame(
        {"customer_id": ["a"], "at": [datetime(2026, 3, 2, 10)], "channel": ["email"]}
    ).with_columns(purpose=pl.lit("marketing"))
    events.write_parquet(tmp_path / "e.parquet")
    contacts.write_parquet(tmp_path / "c.parquet")
    t = load_log(tmp_path / "c.parquet", tmp_path / "e.parquet").timeline
    assert t.filter(~pl.col("is_contact")).get_column("properties").to_list() == [
        '{"page":"/","session_id":"s0"}',
        '{"page":"/cart"}',
        '{"page":"/","session_id":"s2"}',
    ]
    # A session id that is not text keeps its JSON (a number stays a number).
    events.with_columns(session_id=pl.Series([1, None, 2])).drop("page").write_parquet(
        tmp_path / "e.parquet"
    )
    t = load_log(tmp_path / "c.parquet", tmp_path / "e.parquet").timeline
    got = t.filter(~pl.col("is_contact")).select("properties", "session_id").rows()
    assert got == [('{"session_id":1}', "1"), (None, None), ('{"session_id":2}', "2")]


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "bb", "c", "é", ""]), st.integers(-5, 5)),
        max_size=60,
    ),
    scale=st.sampled_from([1, 10**6, 2**40, 2**59]),
    files=st.integers(0, 3),
    split=st.floats(0, 1),
    dtype=st.sampled_from([pl.String, pl.Categorical]),
    tallied=st.booleans(),
)
def test_sort_keys_orders_as_a_stable_sort_by_customer_then_instant(
    rows: list[tuple[str, int]],
    scale: int,
    files: int,
    split: float,
    dtype: pl.DataType,
    tallied: bool,
) -> None:
    """Rows are ordered as sorting the text of their ids and their instants would, equal
    keys in the order given, at any instant, before 1970 too: rows in any order (`files`
    0), in time order (1), or in two files each in time order (2: a contact log and an
    event log, as systems export them; 3: the same, customer by customer); ids as text or
    as a categorical (whose codes are not in the ids' order); and where the categorical's
    codes run past a table's reach (`TALLIED`), numbered densely first."""
    if tallied:
        _sort_keys_case(rows, scale, files, split, dtype)
        return
    # Other categories held first, so that the ids' codes come after theirs (Polars
    # numbers the categories that something holds).
    held = pl.Series([f"held {i}" for i in range(3)], dtype=pl.Categorical)
    with (
        patch("tactful.replay.io.TALLIED", 0),
        patch("tactful.replay.io.some_rows", _dense_rows_only),
    ):
        _sort_keys_case(rows, scale, files, split, dtype)
    assert held.len() == 3


def _dense_rows_only(code: np.ndarray, size: int) -> np.ndarray:
    """`order.some_rows`, asked only for tables as large as the distinct codes."""
    from tactful.replay.order import some_rows

    assert size == len(np.unique(code)), "a table larger than the log's distinct codes"
    return some_rows(code, size)


def _sort_keys_case(
    rows: list[tuple[str, int]],
    scale: int,
    files: int,
    split: float,
    dtype: pl.DataType,
) -> None:
    """`test_sort_keys_orders_as_a_stable_sort_by_customer_then_instant`'s checks."""
    from tactful.replay.io import sort_keys

    if files:
        cut = round(split * len(rows)) if files > 1 else len(rows)
        by = (lambda r: r[1]) if files < 3 else (lambda r: r)
        rows = sorted(rows[:cut], key=by) + sorted(rows[cut:], key=by)
    ids = pl.Series([c for c, _ in rows], dtype=pl.String).cast(dtype)
    instants = pl.Series([t * scale for _, t in rows], dtype=pl.Int64)
    expected = sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1]))
    order, customer, names, ordered, starts = sort_keys(ids, instants)
    assert order.to_list() == expected
    assert names.gather(customer).to_list() == [rows[i][0] for i in expected]
    assert ordered.to_list() == [rows[i][1] * scale for i in expected]
    assert starts.tolist() == np.searchsorted(customer.to_numpy(), range(len(names) + 1)).tolist()
    assert starts[-1] == len(rows)


def test_sort_keys_refuses_a_row_without_a_customer() -> None:
    from tactful.replay.io import sort_keys

    with pytest.raises(ValueError, match="without a customer id"):
        sort_keys(pl.Series(["a", None]), pl.Series([1, 2]))
    with pytest.raises(ValueError, match="without a customer id"):
        sort_keys(pl.Series(["a", None], dtype=pl.Categorical), pl.Series([1, 2]))


#: Times as logs write them, and the instant each is: ISO 8601 with an offset,
TIMES = {
    "2026-03-02T10:00:00Z": datetime(2026, 3, 2, 10, tzinfo=UTC),
    "2026-03-02T10:00:00.25Z": datetime(2026, 3, 2, 10, 0, 0, 250000, tzinfo=UTC),
    "2026-03-02 11:30:00+01:30": datetime(2026, 3, 2, 10, tzinfo=UTC),
    "2026-03-02T10:00Z": datetime(2026, 3, 2, 10, tzinfo=UTC),
    "1969-12-31T23:59:59.5Z": datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
}
#: with an offset but otherwise written,
ODD = {
    "2026-03-02T10:00:00.25z": datetime(2026, 3, 2, 10, 0, 0, 250000, tzinfo=UTC),
    " 2026-03-02T10:00:00Z ": datetime(2026, 3, 2, 10, tzinfo=UTC),
    "2026-03-02T10:00:00.1234567Z": datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC),
}
#: and without one (UTC).
NAIVE = {
    "2026-03-02T10:00:00": datetime(2026, 3, 2, 10, tzinfo=UTC),
    "2026-03-02": datetime(2026, 3, 2, tzinfo=UTC),
    "2026-03-02T10": datetime(2026, 3, 2, 10, tzinfo=UTC),  # Python's reader
}
NOT_TIMES = ["yesterday", "2026-02-30T10:00:00Z", "2026-03-02T25:00:00Z"]


@pytest.mark.parametrize(
    "given",
    [
        list(TIMES),  # read by Arrow's ISO 8601 reader at once
        list(TIMES) + list(ODD) + list(NAIVE),  # what it cannot read, format by format
        list(TIMES) + NOT_TIMES + [None, "  "],  # bad and blank ones flagged, by row
    ],
)
@pytest.mark.parametrize("dtype", [pl.String, pl.Categorical])
def test_times_are_read_in_every_form_logs_write_them(
    given: list[str | None], dtype: pl.DataType
) -> None:
    from tactful.replay.io import _Checker, _iso_times, _numbered, _times

    expected = {**TIMES, **ODD, **NAIVE}
    arrow = _iso_times(pl.Series(given, dtype=pl.String))
    assert (arrow is not None) == (given == list(TIMES))
    chk = _Checker(_numbered(pl.DataFrame({"at": given}, schema={"at": dtype})), "c.parquet")
    got = _times(chk, "at", required=True).to_list()
    for value, us in zip(given, got, strict=True):
        instant = expected.get(value) if value else None
        assert (None if us is None else to_datetime(us)) == instant, value
    flagged = {(b.row, b.message.split(" (")[0]) for b in chk.bad}
    assert flagged == {
        (row, "is missing" if not (value or "").strip() else "is not a time")
        for row, value in enumerate(given, start=1)
        if value not in expected
    }


@pytest.mark.parametrize(
    "values",
    [
        ["email", "sms", "email", None],  # left as they are: the column itself
        [" Email ", " Email "],  # one value, changed: the same for every row
        ["email", " SMS", None, "", "email"],  # looked up per value
        [],
    ],
)
def test_per_value_gives_each_rows_result(values: list[str | None]) -> None:
    from tactful.replay.io import _blank, _per_value, _text

    df = pl.DataFrame({"c": values}, schema={"c": pl.String})
    got = _per_value(df, "c", value=_text(df, "c").str.to_lowercase(), blank=_blank("c"))
    assert got.schema == pl.Schema({"value": pl.Categorical(), "blank": pl.Boolean()})
    assert got.get_column("value").to_list() == [
        v.strip().lower() or None if v is not None else None for v in values
    ]
    assert got.get_column("blank").to_list() == [v is None or not v.strip() for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "", " c", "é"])), max_size=30))
def test_a_categoricals_present_values_are_its_unique_ones(values: list[str | None]) -> None:
    """`_present` finds on the codes what `unique` finds: each value a row has, once,
    null where a row has none, no value only some other column has; by Polars' `unique`
    where the codes are too many to tally."""
    from tactful.replay import io

    pl.Series(["only elsewhere"], dtype=pl.Categorical)  # in the mapping, in no row here
    coded = pl.Series("c", values, dtype=pl.String).cast(pl.Categorical)
    unique = sorted(coded.unique().to_list(), key=str)
    original = io.TALLIED
    for tallied in (original, 0):
        io.TALLIED = tallied
        try:
            found = io._present(coded)
        finally:
            io.TALLIED = original
        assert found.dtype == coded.dtype and found.name == "c"
        assert sorted(found.to_list(), key=str) == unique
        assert found.n_unique() == len(found)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_slice_is_built_alone_as_the_whole_timeline_holds_it(tmp_path: Path, seed: int) -> None:
    """A replay builds the timeline a slice at a time (`TimelineBuilder.frame`): each
    slice, of any columns, equals that slice of the whole, with rows numbered from the
    order or (bad rows left out) gathered, profiles joined, sparse and dense columns."""
    files = write_log(tmp_path, customers=40, seed=seed)
    contacts = pl.read_parquet(files.contacts)
    if seed == 2:  # a bad row: row numbers are gathered, not worked out from the order
        bad = pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("e-mail"))
        contacts = contacts.with_columns(bad.otherwise("channel").alias("channel"))
        contacts.write_parquet(files.contacts)
    loaded = load_log(files.contacts, files.events, customers=files.customers)
    builder = loaded.source
    n = builder.height
    assert n > 1000 and loaded.customers == len(builder.starts) - 1
    every = tuple(TIMELINE_COLUMNS)
    some = ("properties", "channel", "session_id", "customer_id", "row", "timezone", "priority")
    cuts = [(0, n, every), (0, 1, every), (7, 500, some), (n - 300, 1000, every)]
    bounds = builder.starts[5:10].tolist()
    cuts += [(a, b - a, every) for a, b in pairwise(bounds)]
    pieces = [builder.frame(offset, length, columns) for offset, length, columns in cuts]
    # Each row's customer as a number: its place among the log's ids.
    numbered = builder.frame(7, 500, (CUSTOMER_CODE, "customer_id"))
    # Customers' profiles, as the timeline holds them on their rows.
    some_customers = pl.Series([3, 0, 7, 3], dtype=pl.UInt32)
    profiles = builder.profiles(some_customers)
    # A column added for one file's rows, the others' filled, as one given for all rows.
    heights = builder.heights
    assert len(heights) == 2 and sum(heights) == n
    builder.add("_all", pl.Series(np.r_[np.arange(heights[0]), np.full(heights[1], -1)]))
    builder.add("_first", pl.Series(np.arange(heights[0])), file=0, fill=-1)
    added = [builder.frame(a, b, ("_all", "_first")) for a, b, _ in cuts]
    assert all(f.get_column("_first").null_count() == 0 for f in added)
    assert all(f.get_column("_first").equals(f.get_column("_all"), check_names=False)
               for f in added)  # fmt: skip
    # With nulls among one file's values: they hold the fill too. And a column added again
    # under a name already read is read anew.
    gaps = pl.Series(np.arange(heights[0])).scatter([0, 2], None)
    builder.add("_gaps", gaps, file=0, fill=-1)
    builder.add("_all", pl.Series(np.r_[gaps.fill_null(-1).to_numpy(), np.full(heights[1], -1)]))
    builder.add("_first", gaps.fill_null(-1), file=0, fill=-1)
    for a, b, _ in cuts:
        f = builder.frame(a, b, ("_all", "_first", "_gaps"))
        assert f.get_column("_gaps").equals(f.get_column("_all"), check_names=False)
        assert f.get_column("_first").equals(f.get_column("_all"), check_names=False)
    with pytest.raises(ValueError, match="5 values for"):
        builder.add("_bad", pl.Series(np.arange(5)), file=1)
    whole = loaded.timeline  # built after the slices: they were made without it
    assert whole.get_column("properties").null_count() > n // 2  # a sparse column
    for (offset, length, columns), piece in zip(cuts, pieces, strict=True):
        assert_frame_equal(piece, whole.slice(offset, length).select(columns))
    assert (seed == 2) == bool(loaded.bad_rows)
    # Once built, slices are cut from the whole.
    assert_frame_equal(builder.frame(3, 9, some), whole.slice(3, 9).select(some))
    names = builder.names.gather(numbered.get_column(CUSTOMER_CODE))
    assert names.to_list() == numbered.get_column("customer_id").to_list()
    assert numbered.get_column(CUSTOMER_CODE).n_unique() > 1
    assert_frame_equal(builder.frame(7, 500, (CUSTOMER_CODE, "customer_id")), numbered)
    first = builder.starts[some_customers.to_numpy()]
    want = whole.select(pl.col(PROFILE_COLUMNS).gather(first))
    assert_frame_equal(profiles, want)
    assert_frame_equal(builder.profiles(some_customers), want)  # from the whole
    assert profiles.get_column("timezone").null_count() < len(profiles)
