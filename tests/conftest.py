from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tactful import CustomerProfile, Engine, Event

CHICAGO = ZoneInfo("America/Chicago")
#: Tuesday 24 November 2026, 14:00 in Chicago: a plain working afternoon.
TUESDAY_2PM = datetime(2026, 11, 24, 14, 0, tzinfo=CHICAGO)
REQUIRE_SERVICES = os.environ.get("TACTFUL_REQUIRE_SERVICES") == "1"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY_2PM)


@pytest.fixture
def engine(clock: Clock) -> Engine:
    e = Engine("courtesy", clock=clock)
    e.profile(
        CustomerProfile("ann", timezone="America/Chicago", country="US", phones=("+13125550142",))
    )
    return e


def event(kind: str, when: datetime, /, customer: str = "ann", **props: object) -> Event:
    return Event(
        customer, kind, when, event_id=f"{customer}-{kind}-{when.isoformat()}", properties=props
    )


# -- stores: every store-backed test runs on SQLite and on PostgreSQL ----------------------

PG_ADMIN_URL = os.environ.get("TACTFUL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> str | None:
    """None if PostgreSQL answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means "not available"
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}"


def unavailable(why: str | None) -> None:
    """Where `why` names what a test needs and lacks (a service, a browser, Java): skip
    the test, or fail it under TACTFUL_REQUIRE_SERVICES=1 (CI), where nothing may skip."""
    if why:
        if REQUIRE_SERVICES:
            pytest.fail(why)
        pytest.skip(why)


#: Debian's Chromium, and how the browser tests start it (no network but the page's).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


def need_browser() -> None:
    """Skip (or, under TACTFUL_REQUIRE_SERVICES=1, fail) without Chromium and Playwright."""
    why = None
    if not CHROMIUM.exists():
        why = f"Debian's Chromium is not at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            why = "the playwright package is not installed (pip install -e '.[dev]')"
    unavailable(why)


def need_postgres() -> None:
    """Skip (or, under TACTFUL_REQUIRE_SERVICES=1, fail) when PostgreSQL is absent."""
    unavailable(_pg_available())


@pytest.fixture
def pg_url() -> object:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import uuid

    import psycopg

    need_postgres()
    name = f"tactful_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """The URL of an empty store of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/tactful.db"
    url: str = request.getfixturevalue("pg_url")
    return url
