"""Seeded scenarios for the engine's differential test (`test_engine_equivalence.py`).

A scenario is one customer's ledger and a run of proposals decided at moving instants on
it. The generator aims at the corners where a cache could go stale or a fast path could
drift from the plain algorithm: holds that expire between two decisions, instants exactly
on a window or gap boundary, contacts dated in the future, requested contacts, several
zones for one phone number, holidays and DST changes, `now` stepping backwards.

`snapshot()` renders every decision as one line of JSON. The stored snapshot
(`tests/snapshots/engine_decisions.jsonl.gz`) was made by the engine as it was before the
speed work; rewrite it only for an intended change of semantics:

    .venv/bin/python -m tests.engine_cases --write
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tactful import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    CustomerState,
    Decision,
    Event,
    Policy,
    Trigger,
)
from tactful.engine import decide

SNAPSHOT = Path(__file__).parent / "snapshots" / "engine_decisions.jsonl.gz"
SEED = 20261123
SCENARIOS = 360
STEPS = 9

LAW_PACKS = (
    "us-tcpa",
    "us-reg-f",
    "us-fl-ftsa",
    "us-ok",
    "us-md",
    "ca-crtc",
    "fr-demarchage",
    "au-telemarketing",
)


@cache
def policy(name: str) -> Policy:
    if name == "courtesy":
        return Policy.load("courtesy")
    packs = ", ".join(("courtesy", *LAW_PACKS))
    return Policy.from_text(f"name: laws\nversion: '1'\nextends: [{packs}]\n")


PROFILES = (
    dict(timezone="America/Chicago", country="US", phones=("+13125550142",)),
    dict(timezone="America/New_York", country="US", subdivision="FL"),
    dict(timezone="Europe/Paris", country="FR"),
    dict(timezone="Australia/Sydney", country="AU"),
    dict(timezone="Europe/London", country="GB"),
    dict(phones=("+12085550100",)),  # Idaho: two zones, US holidays from the number
    dict(phones=("+14055550100",)),  # Oklahoma
    dict(phones=("+14165550100",), country="CA"),
    dict(country="US"),  # a country, no zone: UTC
    dict(),  # nothing known
    dict(timezone="America/Chicago", country="US", preferences={"pace": {"count": 1, "per": "3d"}}),
    dict(timezone="America/Chicago", country="US", preferences={"channels": ["email"]}),
    dict(timezone="Europe/Paris", country="FR", consent={"sms:marketing": False}),
    dict(timezone="America/New_York", country="US", consent={"*": False}),
)
#: Anchors: ordinary weekdays, a Sunday, US Thanksgiving, Christmas Eve, DST changes.
ANCHORS = (
    datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
    datetime(2026, 11, 17, 20, 0, tzinfo=UTC),
    datetime(2026, 11, 22, 16, 0, tzinfo=UTC),
    datetime(2026, 11, 26, 15, 0, tzinfo=UTC),
    datetime(2026, 12, 24, 13, 0, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 0, tzinfo=UTC),
    datetime(2027, 1, 1, 9, 0, tzinfo=UTC),
)
CHANNELS = ("email", "email", "call", "call", "sms", "push", "chat", "in_app", "mail", "visit")
PURPOSES = ("marketing", "marketing", "sales", "sales", "service", "transactional", "collections")
ACTIVITY = (
    "session_started",
    "page_viewed",
    "product_viewed",
    "signed_in",
    "searched",
    "cart_updated",
    "checkout_started",
    "order_completed",
    "content_downloaded",
    "help_requested",
    "chat_dismissed",
    "session_ended",
)
OUTCOMES = (
    None,
    None,
    "delivered",
    "answered",
    "no_answer",
    "no_answer",
    "voicemail",
    "replied",
    "declined",
    "bounced",
)
TRIGGERS = (
    None,
    None,
    None,
    "signed_in",
    "page_viewed",
    "checkout_started",
    "cart_updated",
    "callback_requested",
    "help_requested",
    "content_downloaded",
)
OFFERS = (None, "premium", "consult")
ACCOUNTS = (None, "A1", "A2")
SUBJECTS = (None, "Hello", "URGENT: act now", "Your order", "Winter ideas")
BODIES = (None, "See what's new.", "I saw you were looking at our pricing page.", "Thanks!")


@dataclass(frozen=True)
class Step:
    proposal: ContactProposal
    now: datetime


@dataclass(frozen=True)
class Scenario:
    index: int
    policy: str
    profile: CustomerProfile
    events: tuple[Event, ...]
    contacts: tuple[Contact, ...]
    steps: tuple[Step, ...]

    def state(self) -> CustomerState:
        return CustomerState(self.profile, self.events, self.contacts)


def _seconds(rng: random.Random) -> float:
    """An offset with a sub-second part now and then, as real event times have."""
    base = rng.choice((0.0, 0.0, 0.25, 0.123456))
    return base + rng.randint(0, 59)


def _edge(rng: random.Random, anchor: datetime) -> timedelta:
    """Offsets from the anchor that land on or next to the policies' windows."""
    unit = rng.choice((20 * 3600, 48 * 3600, 7 * 86400, 14 * 86400, 30 * 60, 3600, 86400, 30))
    sign = rng.choice((-1, -1, -1, 1))
    nudge = rng.choice((0.0, 0.0, -1.0, 1.0, -0.000001, 0.5))
    return timedelta(seconds=sign * unit + nudge)


def _events(rng: random.Random, cid: str, anchor: datetime) -> list[Event]:
    out: list[Event] = []

    def add(kind: str, when: datetime, **props: Any) -> None:
        out.append(Event(cid, kind, when, f"e{len(out)}", props))

    for s in range(rng.randint(0, 6)):
        start = anchor - timedelta(minutes=rng.choice((2, 8, 25, 45, 70, 600, 3000, 20000)))
        start += timedelta(seconds=_seconds(rng))
        sid = f"s{s}" if rng.random() < 0.7 else None
        at = start
        for kind in ["session_started", *rng.sample(ACTIVITY, rng.randint(1, 5))]:
            props = {"session_id": sid} if sid else {}
            add(kind, at, **props)
            at += timedelta(seconds=rng.choice((3, 8, 20, 45, 120, 900)))
    roll = rng.random()
    when = anchor - timedelta(days=rng.uniform(0, 40))
    if roll < 0.08:
        add("opted_out", when, **({"channel": "call"} if rng.random() < 0.5 else {}))
        if rng.random() < 0.3:
            add("opted_in", when + timedelta(days=1))
    elif roll < 0.16:
        add("unsubscribed", when, channel=rng.choice(("email", "sms")), purpose="marketing")
    elif roll < 0.2:
        add("complained", when)
    elif roll < 0.3:
        add(
            rng.choice(("offer_declined", "not_interested")),
            when,
            **({"offer": rng.choice(("premium", "consult"))} if rng.random() < 0.6 else {}),
        )
    elif roll < 0.36:
        until = anchor + timedelta(days=rng.uniform(-1, 10))
        add("snooze_requested", when, until=until.isoformat())
    elif roll < 0.44:
        at = anchor + timedelta(hours=rng.uniform(-30, 72))
        add(
            "callback_requested",
            anchor - timedelta(hours=rng.uniform(0, 48)),
            at=at.isoformat(),
            channel="call",
        )
    elif roll < 0.5:
        add("contact_replied", when, text=rng.choice(("STOP", "thanks", "please stop calling")))
    if rng.random() < 0.15:
        # An event dated after the decision instant (clock skew at the sender).
        add(rng.choice(ACTIVITY), anchor + timedelta(minutes=rng.uniform(1, 120)))
    if rng.random() < 0.2:
        add(
            rng.choice(("help_requested", "callback_requested", "signed_in")),
            anchor - timedelta(minutes=rng.uniform(0, 300)),
        )
    return out


#: What a scenario is mostly about, so that caps, gaps and back-off fill up.
FOCUS = (
    ("call", "sales"),
    ("call", "sales"),
    ("email", "marketing"),
    ("email", "sales"),
    ("sms", "marketing"),
    ("call", "collections"),
    ("chat", "service"),
)


def _kind(rng: random.Random, focus: tuple[str, str]) -> tuple[str, str]:
    return focus if rng.random() < 0.6 else (rng.choice(CHANNELS), rng.choice(PURPOSES))


def _contacts(
    rng: random.Random, cid: str, anchor: datetime, focus: tuple[str, str], *, ghost: bool
) -> list[Contact]:
    out: list[Contact] = []
    span = rng.choice((3, 10, 30, 90))  # days of history
    for i in range(rng.choice((0, 2, 4, 7, 12, 25, 50))):
        if rng.random() < 0.3:
            at = anchor + _edge(rng, anchor)
        else:
            at = anchor - timedelta(days=rng.uniform(0, span), seconds=_seconds(rng))
        status = rng.choice(
            (ContactStatus.SENT,) * 6 + (ContactStatus.HELD, ContactStatus.CANCELLED)
        )
        hold_expires = None
        if status is ContactStatus.HELD:
            hold_expires = anchor + timedelta(minutes=rng.choice((-5, 0, 1, 3, 7, 15, 40)))
            if rng.random() < 0.3:
                at = anchor + timedelta(minutes=rng.uniform(-10, 2))
        trigger = rng.choice(TRIGGERS)
        channel, purpose = _kind(rng, focus)
        outcome = rng.choice(OUTCOMES)
        if ghost and channel == "call":
            outcome = rng.choice(("no_answer", "voicemail", "no_answer", None))
        out.append(
            Contact(
                f"k{i:02d}",
                cid,
                channel,
                purpose,
                at,
                status=status,
                outcome=outcome,
                hold_expires=hold_expires,
                trigger_event=trigger,
                trigger_at=at - timedelta(hours=rng.uniform(0, 30)) if trigger else None,
                offer=rng.choice(OFFERS),
                campaign=rng.choice((None, "c1", "c2")),
                source=rng.choice((None, "sales-team", "marketing")),
                flags=rng.choice(((), (), ("greeting",), ("chat_offer",))),
                tags={"account": a} if (a := rng.choice(ACCOUNTS)) else {},
            )
        )
    return out


def _proposal(
    rng: random.Random, cid: str, now: datetime, focus: tuple[str, str]
) -> ContactProposal:
    trigger = rng.choice(TRIGGERS)
    trig = None
    if trigger:
        trig = Trigger(
            trigger, now - timedelta(hours=rng.uniform(0, 30)) if rng.random() < 0.4 else None
        )
    content = None
    if rng.random() < 0.6:
        content = Content(
            subject=rng.choice(SUBJECTS),
            body=rng.choice(BODIES),
            discount=rng.random() < 0.2,
            flags=rng.choice(((), (), ("greeting",), ("chat_offer",))),
        )
    at = None
    if rng.random() < 0.12:
        at = now + timedelta(hours=rng.choice((-1, 2, 20, 49, 200)))
    channel, purpose = _kind(rng, focus)
    return ContactProposal(
        cid,
        channel,
        purpose,
        at=at,
        trigger=trig,
        offer=rng.choice(OFFERS),
        campaign=rng.choice((None, "c1", "c2")),
        source=rng.choice((None, "sales-team", "marketing")),
        content=content,
        tags={"account": a} if (a := rng.choice(ACCOUNTS)) else {},
    )


def scenarios(seed: int = SEED, count: int = SCENARIOS) -> Iterator[Scenario]:
    rng = random.Random(seed)
    for index in range(count):
        cid = f"c{index}"
        anchor = rng.choice(ANCHORS) + timedelta(minutes=rng.randint(-600, 600))
        profile = CustomerProfile(cid, **rng.choice(PROFILES))  # type: ignore[arg-type]
        # A "ghost" never picks up and never comes back: unanswered back-off territory.
        ghost = rng.random() < 0.2
        events = () if ghost else tuple(_events(rng, cid, anchor))
        focus = rng.choice(FOCUS)
        contacts = tuple(_contacts(rng, cid, anchor, focus, ghost=ghost))
        steps = []
        now = anchor
        for _ in range(STEPS):
            steps.append(Step(_proposal(rng, cid, now, focus), now))
            # Mostly forward, by a little or a lot; now and then back, or onto a boundary.
            roll = rng.random()
            if roll < 0.5:
                now += timedelta(seconds=rng.choice((0.001, 1, 30, 90)))
            elif roll < 0.75:
                now += timedelta(minutes=rng.choice((4, 11, 16, 31, 61)))
            elif roll < 0.85:
                now -= timedelta(minutes=rng.choice((1, 10, 20)))
            elif contacts:
                c = rng.choice(contacts)
                if c.hold_expires is not None and rng.random() < 0.5:
                    now = c.hold_expires + timedelta(seconds=rng.choice((0, -0.001, 0.001)))
                else:
                    now = c.at + _edge(rng, c.at)
            else:
                now += timedelta(hours=rng.choice((1, 5, 13)))
        name = "courtesy" if index % 3 else "laws"
        yield Scenario(index, name, profile, events, contacts, tuple(steps))


def render(d: Decision) -> dict[str, Any]:
    """Everything a decision says, as data: verdict, instants, reasons, flags, policy."""
    return {
        "verdict": d.verdict.value,
        "at": d.at.isoformat(),
        "not_before": d.not_before.isoformat() if d.not_before else None,
        "reasons": [r.as_dict() for r in d.reasons],
        "flags": [r.as_dict() for r in d.flags],
        "policy": [d.policy.name, d.policy.version],
    }


def cold(scenario: Scenario) -> Iterator[dict[str, Any]]:
    """Each step decided on a freshly built state: nothing carried between decisions."""
    pol = policy(scenario.policy)
    for step in scenario.steps:
        yield render(decide(scenario.state(), step.proposal, pol, step.now))


def snapshot(seed: int = SEED, count: int = SCENARIOS) -> list[str]:
    lines = []
    for sc in scenarios(seed, count):
        for i, out in enumerate(cold(sc)):
            lines.append(json.dumps({"case": [sc.index, i], **out}, sort_keys=True))
    return lines


def read_snapshot() -> list[str]:
    with gzip.open(SNAPSHOT, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the engine decision snapshot.")
    parser.add_argument("--write", action="store_true", help=f"Rewrite {SNAPSHOT.name}.")
    args = parser.parse_args()
    lines = snapshot()
    verdicts: dict[str, int] = {}
    for line in lines:
        v = json.loads(line)["verdict"]
        verdicts[v] = verdicts.get(v, 0) + 1
    print(f"{len(lines)} decisions: {verdicts}")
    if args.write:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        # mtime=0: the same decisions give the same bytes.
        with SNAPSHOT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(("\n".join(lines) + "\n").encode("utf-8"))
        print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
