"""The synthetic log generator: deterministic, a small log is a prefix of a larger one."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tactful.replay.synthetic import customer_log, write_log


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = write_log(tmp_path / "a", customers=30, seed=4)
    b = write_log(tmp_path / "b", customers=30, seed=4, chunk=7)
    c = write_log(tmp_path / "c", customers=30, seed=5)
    assert pl.read_parquet(a.contacts).equals(pl.read_parquet(b.contacts))
    assert pl.read_parquet(a.events).equals(pl.read_parquet(b.events))
    assert not pl.read_parquet(a.events).equals(pl.read_parquet(c.events))


def test_a_small_log_is_a_prefix_of_a_larger_one() -> None:
    assert customer_log(3, seed=1) == customer_log(3, seed=1)


def test_sized_by_rows_and_realistic(tmp_path: Path) -> None:
    files = write_log(tmp_path, rows=20_000, seed=2)
    assert 20_000 <= files.rows < 30_000
    events = pl.read_parquet(files.events)
    contacts = pl.read_parquet(files.contacts)
    kinds = set(events.get_column("event"))
    assert {
        "session_started",
        "checkout_started",
        "order_completed",
        "offer_declined",
        "opted_out",
        "chat_dismissed",
        "signed_in",
    } <= kinds
    assert {"call", "email", "sms", "chat", "in_app"} <= set(contacts.get_column("channel"))
    assert {"no_answer", "delivered", "unsubscribed"} <= set(contacts.get_column("outcome"))
    assert 0.15 < files.n_contacts / files.rows < 0.4


def test_csv_output_replays(tmp_path: Path) -> None:
    from tactful.replay.io import load_log

    files = write_log(tmp_path, customers=5, seed=1, fmt="csv")
    loaded = load_log(files.contacts, files.events, customers=files.customers, strict=True)
    assert loaded.timeline.height == files.rows
