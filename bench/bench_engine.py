"""In-process decision under `courtesy`, side by side with `limits`' moving-window `hit`.

The target (PRODUCT.md): a customer with 50 past contacts and 200 events, decided under
`courtesy`, at least as many decisions per second as `limits`' moving-window `hit` performs
for a single cap on its memory storage, measured in the same run.

tactful: a few hundred customers, each with 50 past contacts over the last 90 days (with
outcomes, a few live holds) and 200 events over the last 60 days (sessions of page views,
searches, sign-ins, carts, checkouts, downloads; some declines, unsubscribes, snoozes,
call-back requests; a quarter of them on the site right now), in seven time zones. A mix of
proposals (marketing email, sales email and call, SMS, push, chat offers and greetings,
service and transactional contacts) is decided with `tactful.decide` on each customer's
live state, as the library and the service do, while the clock moves forward a little with
every decision (`--step-ms`), so nothing can be cached by the exact instant. The same loop
with one fixed `now` is reported apart.

limits: `MovingWindowRateLimiter.hit` on `MemoryStorage` for one cap, "3 per 7 days"
(`RateLimitItemPerDay(3, 7)`, the size of courtesy's marketing-email cap; `limits` keys a
cap by amount and a whole number of periods, so 7 days is exact). One identifier per
customer, as tactful keeps one ledger per customer. Two cases, since a full window answers
sooner than one that still has room: *room left* (each identifier hit twice: both admitted)
and *full* (each identifier already at 3: every hit refused). `limits` reads the wall clock
and prunes expired entries in a background thread; both run in the measured time, as in
real use. The target is held against the faster of the two.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from report import Figure, Result, Table, arguments, command_line, log, run

from tactful.engine import Answer, decide
from tactful.model import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    Decision,
    Event,
    Trigger,
)
from tactful.policy.document import Policy
from tactful.state import CustomerState

#: Tuesday 24 November 2026, 15:00 UTC: a working day in every zone below but Sydney's night.
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ZONES = (
    ("America/New_York", "US", "+12125550143"),
    ("America/Chicago", "US", "+13125550142"),
    ("America/Los_Angeles", "US", "+14155550199"),
    ("Europe/London", "GB", "+442079460958"),
    ("Europe/Paris", "FR", "+33142685300"),
    ("Europe/Berlin", "DE", "+4930901820"),
    ("Australia/Sydney", "AU", "+61291234567"),
)
PAGES = (
    "page_viewed",
    "page_viewed",
    "page_viewed",
    "product_viewed",
    "product_viewed",
    "searched",
)
OFFERS = ("premium-plan", "free-consultation", "winter-sale")


# -- customers -----------------------------------------------------------------------------


def _session(
    rng: random.Random, cid: str, sid: str, start: datetime, out: list[Event], *, live: bool
) -> None:
    """One visit: a start, pages, sometimes a sign-in, cart, checkout, download, help."""
    at = start

    def add(kind: str, **props: object) -> None:
        out.append(Event(cid, kind, at, f"{cid}-e{len(out)}", {"session_id": sid, **props}))

    add("session_started")
    for _ in range(rng.randint(3, 7)):
        at += timedelta(seconds=rng.uniform(5, 90))
        add(rng.choice(PAGES))
    roll = rng.random()
    if roll < 0.25:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("signed_in")
    if roll < 0.15:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("cart_updated")
        at += timedelta(seconds=rng.uniform(5, 60))
        add("checkout_started")
        if rng.random() < 0.6:
            at += timedelta(seconds=rng.uniform(30, 300))
            add("order_completed")
    elif roll < 0.25:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("content_downloaded")
    elif roll < 0.3:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("help_requested")
    elif roll < 0.35:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("chat_dismissed")
    if not live:
        at += timedelta(seconds=rng.uniform(5, 60))
        add("session_ended")


def _events(rng: random.Random, cid: str, now: datetime, count: int) -> list[Event]:
    out: list[Event] = []
    live = rng.random() < 0.25  # on the site right now
    # Signals that are not visits: replies, declines, unsubscribes, snoozes, call-backs.
    extra: list[Event] = []
    for _ in range(rng.randint(2, 5)):
        at = now - timedelta(days=rng.uniform(0.5, 60))
        extra.append(Event(cid, "contact_replied", at, f"{cid}-r{len(extra)}"))
    roll = rng.random()
    if roll < 0.12:
        at = now - timedelta(days=rng.uniform(1, 80))
        props = {"offer": rng.choice(OFFERS)}
        extra.append(Event(cid, "offer_declined", at, f"{cid}-dec", props))
    elif roll < 0.17:
        at = now - timedelta(days=rng.uniform(1, 30))
        extra.append(Event(cid, "unsubscribed", at, f"{cid}-unsub", {"channel": "sms"}))
    elif roll < 0.2:
        extra.append(Event(cid, "opted_out", now - timedelta(days=3), f"{cid}-optout"))
    elif roll < 0.23:
        until = (now + timedelta(days=rng.uniform(1, 20))).isoformat()
        extra.append(
            Event(cid, "snooze_requested", now - timedelta(days=1), f"{cid}-snz", {"until": until})
        )
    elif roll < 0.26:
        when = (now + timedelta(days=rng.uniform(0.5, 5))).isoformat()
        extra.append(
            Event(
                cid,
                "callback_requested",
                now - timedelta(days=1),
                f"{cid}-cb",
                {"at": when, "channel": "call"},
            )
        )
    budget = count - len(extra)
    s = 0
    while len(out) < budget:
        if live and len(out) >= budget - 12:
            start = now - timedelta(minutes=rng.uniform(2, 12))
        else:
            start = now - timedelta(days=rng.uniform(0.1, 60))
        _session(rng, cid, f"{cid}-s{s}", start, out, live=live and len(out) >= budget - 12)
        s += 1
    return out[:budget] + extra


CONTACT_MIX = (  # (channel, purpose, weight)
    ("email", "marketing", 50),
    ("email", "sales", 10),
    ("call", "sales", 15),
    ("sms", "marketing", 10),
    ("push", "marketing", 10),
    ("chat", "service", 5),
)
OUTCOMES = {
    "call": ("no_answer", "no_answer", "voicemail", "answered", "answered"),
    "email": ("delivered", "delivered", "delivered", "replied", "bounced"),
    "sms": ("delivered", "delivered", "replied"),
    "push": ("delivered",),
    "chat": ("replied", "delivered"),
}


def _contacts(rng: random.Random, cid: str, now: datetime, count: int) -> list[Contact]:
    kinds = [(c, p) for c, p, _ in CONTACT_MIX]
    weights = [w for _, _, w in CONTACT_MIX]
    out: list[Contact] = []
    for i in range(count):
        channel, purpose = rng.choices(kinds, weights)[0]
        at = now - timedelta(days=rng.uniform(0.02, 90))
        status, hold_expires, outcome = ContactStatus.SENT, None, rng.choice(OUTCOMES[channel])
        if i < 2 and rng.random() < 0.3:
            # A hold placed minutes ago, not yet confirmed: it counts until it expires.
            at = now - timedelta(minutes=rng.uniform(1, 10))
            status, hold_expires, outcome = ContactStatus.HELD, at + timedelta(minutes=15), None
        elif rng.random() < 0.03:
            status = ContactStatus.CANCELLED
        trigger = rng.choice(("signed_in", "product_viewed")) if purpose == "sales" else None
        out.append(
            Contact(
                f"{cid}-k{i}",
                cid,
                channel,
                purpose,
                at,
                status=status,
                outcome=outcome,
                hold_expires=hold_expires,
                trigger_event=trigger,
                trigger_at=at - timedelta(days=1) if trigger else None,
                offer=rng.choice(OFFERS) if purpose == "sales" else None,
                campaign=f"cmp-{rng.randint(1, 6)}" if purpose == "marketing" else None,
                source="sales-team" if purpose == "sales" else "marketing-team",
            )
        )
    return out


def customers(rng: random.Random, n: int, now: datetime) -> list[CustomerState]:
    states = []
    for i in range(n):
        cid = f"cust-{i:05d}"
        zone, country, phone = ZONES[i % len(ZONES)]
        profile = CustomerProfile(cid, timezone=zone, country=country, phones=(phone,))
        states.append(
            CustomerState(profile, _events(rng, cid, now, 200), _contacts(rng, cid, now, 50))
        )
    return states


def own(state: CustomerState) -> CustomerState:
    """A copy of `state` that shares no memo with it."""
    copy = state.copy()
    copy.memo = dict(state.memo)
    copy.contact_memo = dict(state.contact_memo)
    return copy


# -- proposals -----------------------------------------------------------------------------


def proposals(rng: random.Random, cid: str, n: int) -> list[ContactProposal]:
    """A realistic mix of what senders ask, for one customer."""
    out = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.35:
            # One in eight fakes urgency, one in eight reveals tracking: content denies.
            subject = rng.choice(
                (
                    "Our winter picks",
                    "New arrivals",
                    "Ideas for you",
                    "Back in stock",
                    "Your monthly digest",
                    "Gift guide",
                    "Last chance this season",
                    "URGENT: last day",
                )
            )
            body = rng.choice(
                (
                    "Fresh ideas for the season.",
                    "See what's new.",
                    "Handpicked for you.",
                    "Our team's favourites.",
                    "Free returns.",
                    "Now with free delivery.",
                    "New colours are in.",
                    "We noticed you viewed our pricing page.",
                )
            )
            p = ContactProposal(
                cid,
                "email",
                "marketing",
                campaign=f"cmp-{rng.randint(1, 6)}",
                content=Content(subject=subject, body=body),
            )
        elif roll < 0.45:
            p = ContactProposal(
                cid,
                "email",
                "sales",
                offer=rng.choice(OFFERS),
                source="sales-team",
                content=Content(subject="Just following up"),
            )
        elif roll < 0.6:
            trigger = Trigger("signed_in") if rng.random() < 0.4 else None
            p = ContactProposal(
                cid, "call", "sales", offer=rng.choice(OFFERS), source="sales-team", trigger=trigger
            )
        elif roll < 0.68:
            p = ContactProposal(cid, "sms", "marketing", content=Content(body="20% off today"))
        elif roll < 0.78:
            p = ContactProposal(cid, "push", "marketing", campaign=f"cmp-{rng.randint(1, 6)}")
        elif roll < 0.88:
            flags = ("greeting",) if rng.random() < 0.3 else ("chat_offer",)
            p = ContactProposal(cid, "chat", "service", content=Content(flags=flags))
        elif roll < 0.93:
            p = ContactProposal(
                cid,
                "email",
                "marketing",
                trigger=Trigger("cart_updated"),
                content=Content(subject="Still thinking?", discount=True),
            )
        elif roll < 0.97:
            p = ContactProposal(cid, "call", "service", source="support")
        else:
            p = ContactProposal(cid, "email", "transactional", content=Content(subject="Receipt"))
        out.append(p)
    return out


# -- measurement ---------------------------------------------------------------------------

#: One round of a case: this many operations, timed as one block.
ROUND = 5000


Timing = tuple[float, float]  # (CPU seconds of the process, wall-clock seconds)


class Case:
    """One measured case: `run(n)` performs n operations and returns the CPU and wall time
    they took (preparation outside the timed block)."""

    def __init__(self, name: str, run: Callable[[int], Timing], warmup: int = 0) -> None:
        self.name = name
        self.run = run
        #: Operations run before measuring (at least a round).
        self.warmup = max(warmup, ROUND)
        self.done = 0
        self.cpu = 0.0
        self.wall = 0.0

    @property
    def per_second(self) -> float:
        """Operations per CPU second: what the code costs, whatever else the machine runs."""
        return self.done / self.cpu if self.cpu else 0.0

    @property
    def per_wall_second(self) -> float:
        return self.done / self.wall if self.wall else 0.0


def timed(block: Callable[[], None]) -> Timing:
    gc.disable()
    cpu, wall = time.process_time(), time.perf_counter()
    block()
    timing = time.process_time() - cpu, time.perf_counter() - wall
    gc.enable()
    return timing


def interleave(cases: list[Case], duration: float) -> None:
    """Rounds of every case in turn until each has `duration` CPU seconds measured, so that
    a change in the machine's load (other work on it) touches every case alike."""
    for case in cases:
        case.run(case.warmup)  # imports, zone and holiday tables, memos, allocators
    while min(c.cpu for c in cases) < duration:
        for case in cases:
            cpu, wall = case.run(ROUND)
            case.cpu += cpu
            case.wall += wall
            case.done += ROUND


def tactful_case(
    name: str,
    states: list[CustomerState],
    cases: list[tuple[int, ContactProposal]],
    policy: Policy,
    step: float,
    verdicts: Counter[str] | None,
    *,
    moving: bool = True,
    cold: bool = False,
    fresh_question: bool = False,
) -> Case:
    position = 0
    clock = START.timestamp()

    def run(n: int) -> Timing:
        nonlocal position, clock
        # The instants are made outside the timed block: a service gets `now` as a datetime.
        if moving:
            nows = [datetime.fromtimestamp(clock + k * step, UTC) for k in range(n)]
            clock += n * step
        else:
            nows = [START] * n
        work = [cases[(position + k) % len(cases)] for k in range(n)]
        position += n
        if cold:
            # What the first decision after a change costs: nothing memoised (the events
            # stay folded: that is the ledger's work, done once per new event).
            todo = [(states[i].copy(), p) for i, p in work]
            for state, _ in todo:
                state.memo = {}
                state.contact_memo = {}
        elif fresh_question:
            # The first time this question is asked of the state: what the rules derive
            # stays memoised, the answers memoised on it (`tactful.engine.Answer`) do not.
            todo = [(states[i].copy(), p) for i, p in work]
            for state, _ in todo:
                state.memo = {k: v for k, v in state.memo.items() if not isinstance(v, Answer)}
        else:
            todo = [(states[i], p) for i, p in work]
        out: list[Decision] = []
        append = out.append

        def block() -> None:
            for (state, proposal), now in zip(todo, nows, strict=True):
                append(decide(state, proposal, policy, now))

        timing = timed(block)
        if verdicts is not None:
            verdicts.update(d.verdict.value for d in out)
        return timing

    # The cases that decide on live states are measured once their memos settled: every
    # question asked three times (the first decision of a kind on a state asks every rule,
    # the second builds the verified thresholds, the third memoises the answer), so that
    # the figure does not depend on how long one measures.
    settled = 3 * len(cases) if not (cold or fresh_question) else 0
    return Case(name, run, settled)


def limits_case(name: str, identifiers: int, *, full: bool) -> Case:
    from limits import RateLimitItemPerDay
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    storage = MemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    cap = RateLimitItemPerDay(3, 7)
    keys = [f"cust-{i:05d}" for i in range(identifiers)]
    admitted = 0
    position = 0

    def run(n: int) -> Timing:
        nonlocal admitted, position
        hit = limiter.hit
        if full:
            # Identifiers already at 3 in the window: every hit is refused.
            work = [keys[(position + k) % identifiers] for k in range(n)]
            for key in set(work):
                while limiter.hit(cap, key):
                    pass
        else:
            # Fresh identifiers, each hit twice: both admitted.
            storage.reset()
            work = [f"{keys[(position // 2 + k // 2) % identifiers]}/{position}" for k in range(n)]
        position += n

        def block() -> None:
            nonlocal admitted
            for key in work:
                admitted += hit(cap, key)

        return timed(block)

    case = Case(name, run)
    case.admitted = lambda: admitted  # type: ignore[attr-defined]
    return case


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration",
        type=float,
        default=3.0,
        help="Seconds measured per case (default 3; six cases, interleaved).",
    )
    parser.add_argument("--quick", action="store_true", help="Half a second per case.")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument(
        "--proposals", type=int, default=20_000, help="Distinct (customer, proposal) cases, cycled."
    )
    parser.add_argument(
        "--step-ms",
        type=float,
        default=1.0,
        help="How far the clock moves with each decision (default 1 ms).",
    )
    parser.add_argument("--policy", default="courtesy")
    parser.add_argument("--seed", type=int, default=7)
    arguments(parser)
    args = parser.parse_args(argv)
    duration = 0.5 if args.quick else args.duration
    command = command_line("bench_engine.py", argv)

    rng = random.Random(args.seed)
    policy = Policy.load(args.policy)
    log(f"building {args.customers} customers (50 contacts, 200 events each) ...")
    states = customers(rng, args.customers, START)
    work = [
        (i, p)
        for i in (rng.randrange(args.customers) for _ in range(args.proposals))
        for p in proposals(rng, states[i].profile.customer_id, 1)
    ]
    step = args.step_ms / 1000.0
    verdicts: Counter[str] = Counter()
    moving = tactful_case(
        "tactful decide, courtesy, clock moving", states, work, policy, step, verdicts
    )
    # Its own states: a case at another instant would take turns with this one at the
    # answers memoised in shared ones, which no single clock does.
    apart = [own(s) for s in states]
    fixed = tactful_case(
        "tactful decide, courtesy, clock fixed", apart, work, policy, step, None, moving=False
    )
    first = tactful_case(
        "tactful decide, courtesy, question new to the state",
        states,
        work,
        policy,
        step,
        None,
        fresh_question=True,
    )
    cold = tactful_case(
        "tactful decide, courtesy, nothing memoised", states, work, policy, step, None, cold=True
    )
    room = limits_case("limits hit, 3 per 7 days, room left", args.customers, full=False)
    full = limits_case("limits hit, 3 per 7 days, full", args.customers, full=True)
    cases = [moving, fixed, first, cold, room, full]
    log(f"measuring {len(cases)} cases, {duration:g} s each, in interleaved rounds ...")
    interleave(cases, duration)

    bar = max(room.per_second, full.per_second)
    ratio = moving.per_second / bar
    total = sum(verdicts.values()) or 1
    mix = ", ".join(f"{v} {100 * verdicts[v] / total:.0f}%" for v in ("allow", "defer", "deny"))

    result = Result("engine", "In-process decision vs limits' moving window", command)
    result.figures += [
        Figure(
            "engine: decisions/s (clock moving)",
            round(moving.per_second),
            "decisions/s",
            "≥ limits hit/s",
            moving.per_second >= bar,
            command,
        ),
        Figure(
            "engine: µs per decision (clock moving)",
            round(1e6 / moving.per_second, 2),
            "µs",
            None,
            None,
            command,
        ),
        Figure("engine: limits hit/s (faster case)", round(bar), "hits/s", None, None, command),
        Figure("engine: ratio to limits", round(ratio, 3), "x", "≥ 1", ratio >= 1, command),
    ]
    rows = [
        [
            c.name,
            f"{c.per_second:,.0f}",
            f"{1e6 / c.per_second:.2f}",
            f"{c.per_wall_second:,.0f}",
            c.done,
            f"{c.per_second / bar:.3f}",
        ]
        for c in cases
    ]
    result.tables.append(
        Table(
            f"{args.customers} customers x (50 contacts, 200 events), {len(work):,} proposals "
            f"cycled, clock +{args.step_ms:g} ms per decision, {duration:g} CPU s per case in "
            f"rounds of {ROUND:,}, one core",
            [
                "case",
                "per CPU second",
                "CPU µs each",
                "per wall second",
                "operations",
                "x limits (faster case)",
            ],
            rows,
        )
    )
    result.tables.append(
        Table(
            "Verdicts (clock moving)",
            ["allow", "defer", "deny"],
            [[verdicts["allow"], verdicts["defer"], verdicts["deny"]]],
        )
    )
    result.notes += [
        f"Verdict mix with the clock moving: {mix}.",
        "tactful: `tactful.decide(state, proposal, policy, now)` on each customer's live state "
        "(no hold placed), `now` moving forward with each decision; 'clock fixed' repeats one "
        "`now`; 'nothing memoised' decides on a copy of the state with its memo dropped, what "
        "the first decision after a change (a new event, a hold) costs; 'question new to the "
        "state' keeps what the rules derive from the state but not the answers memoised on it, "
        "what a question not asked since the state last changed costs.",
        "An answer is memoised in the state with the span of instants over which every rule "
        "answers alike (`Rule.steady`; tests/test_engine_equivalence.py checks every memoised "
        "answer against fresh decisions across its span), so 'clock moving' is mostly answers "
        "looked up: the proposals are cycled, each (customer, question) coming back every "
        f"{len(work):,} decisions. Answers are not memoised for a proposal with a future `at`, "
        "one whose trigger the ledger does not know (taken as `now`), nor past the policy's "
        "horizon, nor on a state's first decision of a plan; they lapse at a hold's expiry, "
        "when the clock passes an event dated later (the live visits' pages) and where a "
        "rule's answer changes; a reason that names the moment (the local minute in a "
        "calling-hours reason, the pressure to a tenth) is worded again by its rule alone "
        "(`Rule.worded`). "
        "'clock moving' and 'clock fixed' are measured after a warm-up in which every "
        "question was asked three times (the first decision of a kind on a state asks every "
        "rule, the second builds the rules' verified thresholds, the third memoises the "
        "answer), so the figure does not depend on how long the run is; the other cases "
        "after one round.",
        "limits: `MovingWindowRateLimiter.hit` on `MemoryStorage`, `RateLimitItemPerDay(3, 7)`, "
        "one identifier per customer; 'room left' hits fresh identifiers twice (admitted), "
        "'full' hits identifiers already at 3 (refused). The target is held against the "
        "faster case.",
        "Rates are per CPU second of the process (its threads included: `limits` prunes "
        "expired entries in a background thread), so other work on the machine does not "
        "count against either side; wall-clock rates are shown beside them. Cases run in "
        "interleaved rounds so that load changes touch them alike.",
    ]
    for row in rows:
        log(f"{row[0]:<46} {row[1]:>10}/CPU s {row[2]:>8} µs   ({row[3]:>10}/wall s)")
    log(f"verdicts: {mix}; ratio to limits: {ratio:.3f}")
    return result


if __name__ == "__main__":
    run(main)
