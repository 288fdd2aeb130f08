"""Realistic synthetic logs to replay: a quarter in the life of a shop's customers.

Customers browse in sessions (page and product views, sign-ins, searches, carts,
checkouts that complete or are abandoned, help requests, downloads, chat offers they
dismiss); some decline an offer, snooze, ask for a call-back, unsubscribe or opt out.
Around them the company's teams send what over-eager teams send: a weekly newsletter,
daily deals, SMS promos, abandoned-cart emails minutes after the checkout, a rep's call
within the hour of each sign-in and again a minute after no answer, daily "just
following up" emails, chat offered twice in a visit, a few URGENT subjects and creepy
"I saw you were looking at..." bodies, and contacts that go on after an opt-out.

Deterministic for a seed: customer `i` is the same whatever the size asked for, so a
small log is a prefix of a larger one. `write_log` streams chunks of customers to Parquet
(or CSV), so tens of millions of rows never sit in memory at once.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: The quarter the log covers: 13 weeks from Monday 5 January 2026.
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 91
ZONES = (
    ("America/New_York", "US"),
    ("America/Chicago", "US"),
    ("America/Los_Angeles", "US"),
    ("Europe/London", "GB"),
    ("Europe/Paris", "FR"),
    ("Europe/Berlin", "DE"),
    ("Australia/Sydney", "AU"),
)
EVENT_PROPS = ("session_id", "offer", "channel", "purpose", "until", "callback_at")
CONTACT_FIELDS = (
    "channel",
    "purpose",
    "trigger",
    "offer",
    "campaign",
    "source",
    "outcome",
    "subject",
    "body",
    "flags",
    "discount",
)

Format = Literal["parquet", "csv"]


def customer_id(i: int) -> str:
    return f"c{i:08d}"


def _offset_hours(zone: str) -> float:
    # The zone's offset in mid-February: local hours for generating, not for deciding.
    probe = START + timedelta(days=45)
    off = probe.astimezone(ZoneInfo(zone)).utcoffset()
    return off.total_seconds() / 3600 if off else 0.0


_OFFSETS = {z: _offset_hours(z) for z, _ in ZONES}
_START_S = START.timestamp()


@dataclass
class _Customer:
    """One customer's rows while they are generated: times in epoch seconds."""

    cid: str
    offset: float
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    contacts: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def local(self, day: float, hour: float) -> float:
        return _START_S + day * 86400 + (hour - self.offset) * 3600

    def event(self, t: float, kind: str, **props: Any) -> None:
        self.events.append((t, kind, props))

    def contact(self, t: float, channel: str, purpose: str, **fields: Any) -> None:
        self.contacts.append((t, {"channel": channel, "purpose": purpose, **fields}))


def _email_outcome(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.004:
        return "unsubscribed"
    if r < 0.005:
        return "complained"
    if r < 0.015:
        return "bounced"
    if r < 0.03:
        return "replied"
    return "delivered"


def _call_outcome(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.2:
        return "answered"
    if r < 0.75:
        return "no_answer"
    if r < 0.95:
        return "voicemail"
    return "declined"


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    # Knuth's method is fine for the small means used here.
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _session(c: _Customer, rng: random.Random, n: int, t: float, lead: bool, rep: str) -> None:
    sid = f"{c.cid}-s{n}"
    c.event(t, "session_started", session_id=sid)
    if rng.random() < 0.15:
        # A visitor who leaves after five seconds, and the chat widget that still pops up.
        c.event(t + 5, "session_ended", session_id=sid)
        if rng.random() < 0.3:
            c.contact(
                t + 3 + rng.random() * 20,
                "chat",
                "sales",
                source="web-chat",
                flags="chat_offer",
                outcome="delivered",
            )
        return
    now = t
    pages = 2 + min(int(rng.expovariate(0.25)), 30)
    signed_in = cart = False
    for k in range(pages):
        now += 20 + rng.random() * 100
        r = rng.random()
        if k == 1 and r < 0.3:
            c.event(now, "signed_in", session_id=sid)
            signed_in = True
        elif r < 0.15:
            c.event(now, "searched", session_id=sid)
        elif r < 0.55:
            c.event(now, "product_viewed", session_id=sid)
        else:
            c.event(now, "page_viewed", session_id=sid)
        if rng.random() < 0.01:
            c.event(now + 5, "help_requested", session_id=sid)
        if rng.random() < 0.008:
            c.event(now + 5, "content_downloaded", session_id=sid)
    if rng.random() < 0.35:
        offer_at = t + 10 + rng.random() * 80
        c.contact(
            offer_at, "chat", "sales", source="web-chat", flags="chat_offer", outcome="delivered"
        )
        if rng.random() < 0.4:
            c.event(offer_at + 8, "chat_dismissed", session_id=sid)
        if rng.random() < 0.4:
            c.contact(
                offer_at + 120 + rng.random() * 180,
                "chat",
                "sales",
                source="web-chat",
                flags="chat_offer",
                outcome="delivered",
            )
    if rng.random() < 0.08:
        for staff in range(1 + int(rng.random() * 3)):
            c.contact(
                t + 30 + 40 * staff,
                "in_app",
                "service",
                source=f"staff-{staff}",
                body="How are you today?",
                flags="greeting",
                outcome="delivered",
            )
    if rng.random() < 0.22:
        now += 30
        c.event(now, "cart_updated", session_id=sid)
        cart = True
    if cart and rng.random() < 0.65:
        now += 60 + rng.random() * 120
        c.event(now, "checkout_started", session_id=sid)
        if rng.random() < 0.55:
            now += 120 + rng.random() * 360
            c.event(now, "order_completed", session_id=sid)
            c.contact(
                now + 60,
                "email",
                "transactional",
                source="orders",
                subject="Your order",
                outcome="delivered",
            )
        else:
            # Abandoned-cart email: often minutes later, while the customer is still there.
            soon = rng.random() < 0.3
            wait = 120 + rng.random() * 300 if soon else 3600 + rng.random() * 5 * 3600
            c.contact(
                now + wait,
                "email",
                "marketing",
                trigger="checkout_started",
                campaign="cart-recovery",
                source="lifecycle",
                subject="You left something behind",
                discount=rng.random() < 0.5,
                outcome=_email_outcome(rng),
            )
    if rng.random() < 0.5:
        c.event(now + 30 + rng.random() * 270, "session_ended", session_id=sid)
    if lead and signed_in and rng.random() < 0.6:
        # The rep who calls within the hour of every sign-in, and again right after no answer.
        call_at = t + 600 + rng.random() * 3000
        outcome = _call_outcome(rng)
        c.contact(
            call_at,
            "call",
            "sales",
            trigger="signed_in",
            source=rep,
            offer="premium-plan",
            outcome=outcome,
        )
        while outcome in ("no_answer", "voicemail") and rng.random() < 0.4:
            call_at += 60 + rng.random() * 240
            outcome = _call_outcome(rng)
            c.contact(call_at, "call", "sales", source=rep, offer="premium-plan", outcome=outcome)


def customer_log(
    i: int, seed: int
) -> tuple[str, str, list[tuple[float, str, dict[str, Any]]], list[tuple[float, dict[str, Any]]]]:
    """Customer `i`'s zone, country, events and contacts (times in epoch seconds)."""
    rng = random.Random(seed * 1_000_003 + i)
    zone, country = ZONES[rng.randrange(len(ZONES))]
    c = _Customer(customer_id(i), _OFFSETS[zone])
    weekly_sessions = rng.lognormvariate(0.1, 0.9)
    lead = rng.random() < 0.3
    rep = f"rep-{rng.randrange(40)}"
    subscribed = rng.random() < 0.85
    daily_deals = rng.random() < 0.08
    sms_promos = rng.random() < 0.25
    for n in range(_poisson(rng, weekly_sessions * DAYS / 7)):
        day = rng.randrange(DAYS)
        _session(c, rng, n, c.local(day, 8 + rng.random() * 14), lead, rep)
    if rng.random() < 0.05:
        c.event(
            c.local(rng.randrange(DAYS), 11 + rng.random() * 6),
            "offer_declined",
            offer="premium-plan",
        )
    if rng.random() < 0.01:
        t = c.local(rng.randrange(DAYS), 12)
        c.event(t, "snooze_requested", until=_iso(t + 21 * 86400))
    if rng.random() < 0.01:
        t = c.local(rng.randrange(DAYS - 10), 15)
        back = c.local((t - _START_S) // 86400 + 3 + rng.randrange(7), 10.5)
        c.event(t, "callback_requested", callback_at=_iso(back), channel="call")
        c.contact(
            back,
            "call",
            "service",
            trigger="callback_requested",
            source="support",
            outcome="answered",
        )
    if rng.random() < 0.04:
        c.event(c.local(rng.randrange(DAYS), 9 + rng.random() * 10), "opted_out")
    for week in range(DAYS // 7):
        if subscribed:
            c.contact(
                c.local(week * 7 + 1, 10),
                "email",
                "marketing",
                campaign="newsletter",
                source="marketing",
                subject="This week at the shop",
                outcome=_email_outcome(rng),
            )
        if sms_promos:
            for d in (2, 5):
                c.contact(
                    c.local(week * 7 + d, 18.5),
                    "sms",
                    "marketing",
                    campaign="sms-promo",
                    source="marketing",
                    outcome="unsubscribed" if rng.random() < 0.005 else "delivered",
                )
        if lead and rng.random() < 0.5:
            daily = rng.random() < 0.3
            for d in range(7 if daily else 1 + int(rng.random() * 2)):
                r = rng.random()
                subject, body = "Just following up", None
                if r < 0.03:
                    subject = "URGENT: act now on your growth plan"
                elif r < 0.05:
                    body = "Hi! I saw you were looking at our pricing page."
                c.contact(
                    c.local(week * 7 + d, 9.5 + rng.random()),
                    "email",
                    "sales",
                    source=rep,
                    offer="premium-plan",
                    subject=subject,
                    body=body,
                    outcome=_email_outcome(rng),
                )
    if daily_deals:
        for day in range(DAYS):
            c.contact(
                c.local(day, 9),
                "email",
                "marketing",
                campaign="daily-deals",
                source="promotions",
                subject="Today's deal",
                outcome=_email_outcome(rng),
            )
    return zone, country, c.events, c.contacts


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- writing -----------------------------------------------------------------------------------


def _us(ts: float) -> int:
    return round(ts * 1_000_000)


_STAMP = pa.timestamp("us", tz="UTC")


def _tables(first: int, last: int, seed: int) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Customers [first, last) as (customers, events, contacts) Arrow tables."""
    profiles: dict[str, list[Any]] = {"customer_id": [], "timezone": [], "country": []}
    ev: dict[str, list[Any]] = {"customer_id": [], "at": [], "event": []}
    ev.update({p: [] for p in EVENT_PROPS})
    co: dict[str, list[Any]] = {"customer_id": [], "at": []}
    co.update({f: [] for f in CONTACT_FIELDS})
    for i in range(first, last):
        zone, country, events, contacts = customer_log(i, seed)
        cid = customer_id(i)
        profiles["customer_id"].append(cid)
        profiles["timezone"].append(zone)
        profiles["country"].append(country)
        events.sort(key=lambda e: e[0])
        for t, kind, props in events:
            ev["customer_id"].append(cid)
            ev["at"].append(_us(t))
            ev["event"].append(kind)
            for p in EVENT_PROPS:
                ev[p].append(props.get(p))
        contacts.sort(key=lambda c: c[0])
        for t, fields in contacts:
            co["customer_id"].append(cid)
            co["at"].append(_us(t))
            for f in CONTACT_FIELDS:
                co[f].append(fields.get(f))
    co["discount"] = [bool(d) for d in co["discount"]]

    def table(data: dict[str, list[Any]]) -> pa.Table:
        arrays = {
            k: (
                pa.array(v, pa.int64()).cast(_STAMP)
                if k == "at"
                else pa.array(v, pa.bool_() if k == "discount" else pa.string())
            )
            for k, v in data.items()
        }
        return pa.table(arrays)

    return table(profiles), table(ev), table(co)


@dataclass
class LogFiles:
    contacts: Path
    events: Path
    customers: Path
    n_customers: int
    n_events: int
    n_contacts: int

    @property
    def rows(self) -> int:
        return self.n_events + self.n_contacts


def iter_chunks(
    seed: int, customers: int | None, rows: int | None, chunk: int
) -> Iterator[tuple[int, tuple[pa.Table, pa.Table, pa.Table]]]:
    """Chunks of customers until `customers` are made or `rows` rows are reached."""
    first = 0
    total = 0
    if rows is not None and customers is None:
        # About 200 rows a customer: small chunks for small logs, so the size is near `rows`.
        chunk = max(10, min(chunk, rows // 2000))
    while True:
        if customers is not None and first >= customers:
            return
        if rows is not None and total >= rows:
            return
        last = first + chunk if customers is None else min(first + chunk, customers)
        tables = _tables(first, last, seed)
        total += tables[1].num_rows + tables[2].num_rows
        yield last - first, tables
        first = last


def write_log(
    folder: str | Path,
    *,
    customers: int | None = None,
    rows: int | None = None,
    seed: int = 1,
    fmt: Format = "parquet",
    chunk: int = 2000,
) -> LogFiles:
    """Write contacts, events and customers files for `customers` customers (or as many as
    it takes to reach `rows` log rows), streaming chunk by chunk."""
    if customers is None and rows is None:
        raise ValueError("give customers or rows")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / f"{name}.{fmt}" for name in ("customers", "events", "contacts")}
    writers: dict[str, Any] = {}
    counts = {"customers": 0, "events": 0, "contacts": 0}
    try:
        for made, tables in iter_chunks(seed, customers, rows, chunk):
            for name, t in zip(("customers", "events", "contacts"), tables, strict=True):
                if name not in writers:
                    if fmt == "parquet":
                        writers[name] = pq.ParquetWriter(paths[name], t.schema)
                    else:
                        writers[name] = pacsv.CSVWriter(paths[name], t.schema)
                writers[name].write_table(t)
                counts[name] += t.num_rows
            del made
    finally:
        for w in writers.values():
            w.close()
    return LogFiles(
        paths["contacts"],
        paths["events"],
        paths["customers"],
        counts["customers"],
        counts["events"],
        counts["contacts"],
    )
