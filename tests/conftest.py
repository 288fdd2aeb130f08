from __future__ import annotations

import os
from datetime import datetime, timedelta
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
        CustomerProfile(
            "ann", timezone="America/Chicago", country="US", phones=("+13125550142",)
        )
    )
    return e


def event(kind: str, when: datetime, /, customer: str = "ann", **props: object) -> Event:
    return Event(customer, kind, when, event_id=f"{customer}-{kind}-{when.isoformat()}", properties=props)
