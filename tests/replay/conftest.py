"""Helpers for replay tests: hand-made logs as CSV, and a local Spark session."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

CONTACT_COLUMNS = (
    "customer_id",
    "at",
    "channel",
    "purpose",
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
)


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return path


class LogBuilder:
    """A hand-made log: `event(...)` and `contact(...)` rows, written as CSV files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[dict[str, Any]] = []
        self.contacts: list[dict[str, Any]] = []
        self.profiles: list[dict[str, Any]] = []

    def event(self, customer: str, at: str, kind: str, **props: Any) -> LogBuilder:
        self.events.append({"customer_id": customer, "at": at, "event": kind, **props})
        return self

    def contact(self, customer: str, at: str, channel: str, purpose: str, **fields: Any) -> int:
        """Adds a contact; returns its row number in the contacts file."""
        self.contacts.append(
            {"customer_id": customer, "at": at, "channel": channel, "purpose": purpose, **fields}
        )
        return len(self.contacts)

    def profile(self, customer: str, **fields: Any) -> LogBuilder:
        self.profiles.append({"customer_id": customer, **fields})
        return self

    def write(self) -> tuple[Path, Path, Path | None]:
        props = sorted({k for e in self.events for k in e} - {"customer_id", "at", "event"})
        # Tags (JSON objects) only where a contact has some, as most logs have none.
        tagged = ("tags",) if any("tags" in c for c in self.contacts) else ()
        contacts = write_csv(
            self.folder / "contacts.csv", (*CONTACT_COLUMNS, *tagged), self.contacts
        )
        events = write_csv(
            self.folder / "events.csv", ["customer_id", "at", "event", *props], self.events
        )
        customers = None
        if self.profiles:
            cols = sorted({k for p in self.profiles for k in p} - {"customer_id"})
            customers = write_csv(
                self.folder / "customers.csv", ["customer_id", *cols], self.profiles
            )
        return contacts, events, customers


@pytest.fixture
def log(tmp_path: Path) -> LogBuilder:
    return LogBuilder(tmp_path)


def _java() -> str | None:
    if shutil.which("java") is None:
        return "Java is not installed (PySpark needs it)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'tactful[spark]')"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local-mode Spark session (2 cores, small memory, no UI) for the whole run."""
    unavailable(_java())
    from tactful.replay.spark import session

    s = session("local[2]", memory="768m")
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()
