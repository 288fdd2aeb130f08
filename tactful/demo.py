"""Synthetic customers who live through the seed stories, so a new user sees tactful work.

Each story is a few events and proposals at times in the recent past, decided through the
same runtime as the service, so the audit log, the customer views and the dashboard show
real decisions with real reasons. Loading twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from tactful.localtime import holiday_name
from tactful.model import (
    ContactProposal,
    Content,
    CustomerProfile,
    Decision,
    Event,
    Outcome,
    Trigger,
    Verdict,
)
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.store.base import AuditQuery, Store

PREFIX = "demo-"


@dataclass
class Story:
    customer_id: str
    seed: str
    summary: str
    profile: dict[str, object] = field(default_factory=dict)


STORIES = [
    Story("demo-sean", "004", "Called while still in checkout, then after the order was done"),
    Story("demo-rebecca", "004", "Three calls back to back after no answer"),
    Story("demo-consult", "004", "Declined the free consultation; consultant calls anyway"),
    Story("demo-michelle", "004", "Downloaded an ebook; weekly calls and emails for two months"),
    Story("demo-brokeup", "004", "Opted out; another team calls again"),
    Story("demo-rep", "002", "Rep calls within an hour of every sign-in"),
    Story("demo-store", "002", "Greeted by every member of staff in one visit"),
    Story("demo-chat", "001", "Live chat offered twice in five minutes"),
    Story("demo-followup", "001", "'Just following up' email every day for a week"),
    Story("demo-tv", "003", "TV replaced; asked to be called back in three weeks"),
    Story("demo-insurance", "003", "Insurance agent checks in every few months"),
    Story("demo-creepy", "004", "Email opens with 'I saw you checked out these pages'"),
    Story("demo-urgent", "004", "Every sales email marked URGENT"),
    Story("demo-cart", "002", "Abandoned-cart email with a discount"),
    Story("demo-bounce", "001", "Visitor leaves after five seconds; chat offer proposed"),
    Story("demo-newsletter", "001", "Weekly marketing email, with a way out this time"),
]


def _index(customer_id: str) -> int:
    return next(i for i, s in enumerate(STORIES) if s.customer_id == customer_id)


class _DemoClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def load_demo(store: Store, *, policy: str = "courtesy", now: datetime | None = None) -> str:
    """Load every story not yet in the store. Returns a one-line summary."""
    real_now = now or datetime.now(UTC)
    clock = _DemoClock(real_now)
    runtime = Runtime(Settings(policy=policy), store, clock=clock)
    loaded = 0
    for story in STORIES:
        if store.get_profile(story.customer_id) is not None:
            continue
        _play(story.customer_id, store, runtime, clock, real_now)
        loaded += 1
    if not loaded:
        return f"the {len(STORIES)} demo customers were already loaded"
    return f"{loaded} demo customers living through the seed stories"


def _play(cid: str, store: Store, runtime: Runtime, clock: _DemoClock, now: datetime) -> None:
    # Stories unfold over the past weeks in Chicago, at office hours.
    tz = ZoneInfo("America/Chicago")
    first = (now.astimezone(tz) - timedelta(days=21)).date()

    def day(d: float, hour: float, *, workday: bool = True) -> datetime:
        """Local time `hour` on day `d` of the three weeks before now (a weekday, not a US
        holiday, unless `workday=False`): when a company's staff would act."""
        date_ = first + timedelta(days=int(d))
        while workday and (date_.weekday() >= 5 or holiday_name("US", None, date_)):
            date_ -= timedelta(days=1)
        midnight = datetime(date_.year, date_.month, date_.day, tzinfo=tz)
        return (midnight + timedelta(hours=hour)).astimezone(UTC)

    store.put_profile(
        CustomerProfile(
            cid,
            timezone="America/Chicago",
            country="US",
            # Each customer a number of their own in the fictional 555-01xx range: an
            # opt-out follows its phone number to every record holding it.
            phones=(f"+1312555{100 + _index(cid):04d}",),
            emails=(f"{cid}@example.com",),
        )
    )
    n = 0

    def at(t: datetime) -> datetime:
        clock.now = t
        return t

    def ev(kind: str, t: datetime, **props: object) -> None:
        nonlocal n
        n += 1
        store.add_events([Event(cid, kind, t, f"{cid}-{n}", props)], received_at=t)

    def ask(p: ContactProposal, *, outcome: Outcome | None = None) -> Decision:
        nonlocal n
        n += 1
        p = replace(p, idempotency_key=f"{cid}-p{n}")
        decision, _ = runtime.decide(p)
        if decision.verdict is Verdict.ALLOW and decision.decision_id:
            store.mark_sent(decision.decision_id, at=None, now=clock.now)
            if outcome is not None:
                store.record_outcome(decision.decision_id, outcome.value, now=clock.now)
        return decision

    def call(purpose: str = "sales", **kw: object) -> ContactProposal:
        return ContactProposal(cid, "call", purpose, **kw)  # type: ignore[arg-type]

    def email(purpose: str = "marketing", **kw: object) -> ContactProposal:
        return ContactProposal(cid, "email", purpose, **kw)  # type: ignore[arg-type]

    plays: dict[str, Callable[[], None]] = {}

    def sean() -> None:
        t = day(14, 14)
        ev("session_started", t - timedelta(minutes=9), session_id="s1")
        ev("checkout_started", t - timedelta(minutes=2), session_id="s1")
        at(t)
        ask(
            call(
                trigger=Trigger("checkout_started"), content=Content(body="to help with your order")
            )
        )
        ev("order_completed", at(t + timedelta(minutes=4)), session_id="s1")
        at(t + timedelta(minutes=70))
        ask(
            call(
                trigger=Trigger("checkout_started"), content=Content(body="to help with your order")
            )
        )

    def rebecca() -> None:
        t = at(day(15, 11))
        ask(call(source="rep-7"), outcome=Outcome.NO_ANSWER)
        at(t + timedelta(minutes=1))
        ask(call(source="rep-7"))
        at(t + timedelta(minutes=4))
        ask(call(source="rep-7"))

    def consult() -> None:
        t = day(16, 10)
        ev("offer_declined", t - timedelta(minutes=30), offer="free consultation")
        at(t)
        ask(call(offer="free consultation", source="consultants"))

    def michelle() -> None:
        t0 = day(-35, 10)
        ev("content_downloaded", t0, title="Facebook Marketing ebook")
        trig = Trigger("content_downloaded", t0)
        for week in range(8):
            at(t0 + timedelta(days=1, hours=1) + timedelta(weeks=week))
            ask(call(trigger=trig, source="rep-12"), outcome=Outcome.NO_ANSWER)
            ask(
                email(
                    "sales",
                    trigger=trig,
                    source="rep-12",
                    content=Content(subject="Did you get a chance to read it?"),
                )
            )

    def brokeup() -> None:
        t = day(2, 10)
        ev("opted_out", t, text="we're through; take me off your list")
        for d, team in ((3, "home-services"), (9, "partner-desk"), (17, "home-services")):
            at(day(2 + d, 11))
            ask(call(source=team))

    def rep() -> None:
        for d in range(0, 15, 3):
            t = day(d, 9)
            ev("signed_in", t)
            at(t + timedelta(minutes=40))
            ask(call(trigger=Trigger("signed_in", t), source="account-rep"))

    def store_visit() -> None:
        t = day(18, 12)
        ev("session_started", t, session_id="v1")
        for i in range(4):
            ev("page_viewed", at(t + timedelta(minutes=i + 1)), session_id="v1")
            ask(
                ContactProposal(
                    cid,
                    "in_app",
                    "service",
                    source=f"staff-{i}",
                    content=Content(body="How are you today?", flags=("greeting",)),
                )
            )

    def chat() -> None:
        t = day(19, 13)
        ev("session_started", t, session_id="c1")
        ev("page_viewed", at(t + timedelta(seconds=45)), session_id="c1")
        ask(ContactProposal(cid, "chat", "service"))
        ev("page_viewed", at(t + timedelta(minutes=5)), session_id="c1")
        ask(ContactProposal(cid, "chat", "service"))

    def followup() -> None:
        for d in range(7):
            at(day(d, 10, workday=False))
            ask(email("sales", source="rep-3", content=Content(subject="Just following up")))

    def tv() -> None:
        t = day(5, 11)
        ev(
            "callback_requested",
            t,
            at=day(27, 10.5).isoformat(),
            channel="call",
        )
        at(t + timedelta(days=1))
        ask(call("service", content=Content(body="Is the new TV working?")))

    def insurance() -> None:
        for quarter in range(3, -1, -1):
            at(day(20 - 91 * quarter, 11))
            ask(
                call(source="agent-5", content=Content(body="Checking in")),
                outcome=Outcome.ANSWERED,
            )

    def creepy() -> None:
        at(day(10, 10))
        ask(
            email(
                "sales",
                content=Content(
                    subject="Saw you on our site",
                    body="Hi! I saw you checked out these pages on our site.",
                ),
            )
        )

    def urgent() -> None:
        for d in (3, 8):
            at(day(d, 10))
            ask(email("sales", content=Content(subject="URGENT: act now on your growth plan")))

    def cart() -> None:
        t = day(12, 9)
        ev("checkout_started", t)
        at(t + timedelta(hours=5))
        ask(
            email(
                trigger=Trigger("checkout_started"),
                content=Content(subject="You left something behind", discount=True),
            )
        )

    def bounce() -> None:
        t = day(13, 15)
        ev("session_started", t, session_id="b1")
        ev("session_ended", t + timedelta(seconds=5), session_id="b1")
        at(t + timedelta(seconds=20))
        ask(ContactProposal(cid, "chat", "sales"))

    def newsletter() -> None:
        for week in range(3):
            at(day(7 * week, 8, workday=False))
            ask(email(campaign="weekly-news", content=Content(subject="This week at the shop")))

    plays.update({
        "demo-sean": sean, "demo-rebecca": rebecca, "demo-consult": consult,
        "demo-michelle": michelle, "demo-brokeup": brokeup, "demo-rep": rep,
        "demo-store": store_visit, "demo-chat": chat, "demo-followup": followup, "demo-tv": tv,
        "demo-insurance": insurance, "demo-creepy": creepy, "demo-urgent": urgent,
        "demo-cart": cart, "demo-bounce": bounce, "demo-newsletter": newsletter,
    })  # fmt: skip
    plays[cid]()
    clock.now = now


def tour(store: Store, console: Console) -> None:
    """Print each demo customer's decisions with their reasons."""
    for story in STORIES:
        records = store.audit(AuditQuery(customer_id=story.customer_id, limit=50))
        table = Table(
            title=f"{story.customer_id} ({story.seed}): {story.summary}", title_justify="left"
        )
        table.add_column("when (UTC)")
        table.add_column("contact")
        table.add_column("verdict")
        table.add_column("why")
        for r in reversed(records):
            why = "; ".join(f"{x['rule']}: {x['message']}" for x in r.reasons) or "-"
            table.add_row(
                r.at.strftime("%a %d %b %H:%M"), f"{r.channel}/{r.purpose}", r.verdict, why
            )
        console.print(table)
