"""Audience checks: vectorized decisions per second over in-memory state, and a whole
audience checked end to end against SQLite and PostgreSQL.

The mix (seeded): every customer has a profile in one of six zones; 0-6 contacts over the
last 30 days (email marketing and sales, SMS, calls; one in ten held), 30% visited in the
last days (3% in the last half hour, 1% with a checkout open), 3% opted out of something,
3% snoozed, 2% declined an offer, 1% asked for a call-back, 2% chose channels. The
proposal: a marketing email (`email marketing`), and a marketing SMS (with calling hours).

(1) `check_audience` over a snapshot built beforehand (build time reported apart), CPU
and wall time in one process, and wall time split across two worker processes (fork, each
holding half the snapshot; dispatch and answers included), best of `--rounds`, with the
load average (the machine may be shared); per-path counts. Reasons are
produced for every non-allowed customer in a separate timing.
(2) End to end: customers bulk-inserted into a fresh store, then `check_store` over all
of them (reads in chunks, columns, verdicts and reasons for every line), time and peak RSS.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import resource
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from report import Figure, Result, Table, arguments, command_line, log, run

from tactful import Contact, ContactProposal, ContactStatus, CustomerProfile, CustomerState, Event
from tactful.audience import Snapshot, check_audience
from tactful.policy.document import Policy

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
ZONES = (
    ("America/Chicago", "US"),
    ("America/New_York", "US"),
    ("Europe/Paris", "FR"),
    ("Europe/London", "GB"),
    ("Australia/Sydney", "AU"),
    ("America/Los_Angeles", "US"),
)
KINDS = (
    ("email", "marketing"),
    ("email", "marketing"),
    ("email", "sales"),
    ("sms", "marketing"),
    ("call", "sales"),
)
EMAIL = ContactProposal("", "email", "marketing", campaign="winter")
SMS = ContactProposal("", "sms", "marketing", campaign="winter")


def ledger(rng: random.Random, cid: str) -> tuple[CustomerProfile, list[Event], list[Contact]]:
    tz, country = rng.choice(ZONES)
    prefs: dict[str, Any] = {"channels": ["email"]} if rng.random() < 0.02 else {}
    profile = CustomerProfile(cid, timezone=tz, country=country, preferences=prefs)
    events: list[Event] = []

    def add(kind: str, when: datetime, **props: Any) -> None:
        events.append(Event(cid, kind, when, f"{cid}-{len(events)}", props))

    roll = rng.random()
    if roll < 0.3:
        ago = (
            timedelta(minutes=rng.uniform(2, 25))
            if roll < 0.03
            else timedelta(days=rng.uniform(0.1, 20))
        )
        add("session_started", NOW - ago)
        add("page_viewed", NOW - ago + timedelta(seconds=40))
        if roll < 0.01:
            add("checkout_started", NOW - ago + timedelta(seconds=90))
    roll = rng.random()
    if roll < 0.03:
        add(
            "unsubscribed",
            NOW - timedelta(days=rng.uniform(1, 200)),
            channel=rng.choice(("email", "sms")),
            purpose="marketing",
        )
    elif roll < 0.06:
        add(
            "snooze_requested",
            NOW - timedelta(days=2),
            until=(NOW + timedelta(days=rng.uniform(-3, 14))).isoformat(),
        )
    elif roll < 0.08:
        add("offer_declined", NOW - timedelta(days=rng.uniform(1, 60)), offer="premium")
    elif roll < 0.09:
        add(
            "callback_requested",
            NOW - timedelta(hours=3),
            at=(NOW + timedelta(hours=20)).isoformat(),
            channel="call",
        )
    contacts = []
    for i in range(rng.choice((0, 1, 2, 2, 3, 4, 6))):
        channel, purpose = rng.choice(KINDS)
        at = NOW - timedelta(days=rng.uniform(0.05, 30), seconds=rng.randint(0, 59))
        held = rng.random() < 0.1
        contacts.append(
            Contact(
                f"{cid}-k{i}",
                cid,
                channel,
                purpose,
                at,
                status=ContactStatus.HELD if held else ContactStatus.SENT,
                hold_expires=NOW + timedelta(minutes=rng.choice((-10, 5, 15))) if held else None,
                outcome=rng.choice((None, "delivered", "no_answer")) if channel == "call" else None,
                campaign="autumn",
            )
        )
    return profile, events, contacts


def states(count: int, seed: int) -> list[CustomerState]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        profile, events, contacts = ledger(rng, f"cust-{i:07d}")
        out.append(CustomerState(profile, events, contacts))
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not getrusage: a spawned child's `ru_maxrss`
    carries over its parent's peak across exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- (1) in memory ---------------------------------------------------------------------


def in_memory(
    count: int, policy: Policy, rounds: int
) -> tuple[list[Figure], list[Table], list[str], str]:
    t0 = time.perf_counter()
    built = states(count, 1)
    t1 = time.perf_counter()
    snap = Snapshot.build(built)
    t2 = time.perf_counter()
    log(f"{count:,} states in {t1 - t0:.1f} s, snapshot in {t2 - t1:.1f} s")
    figures, rows, notes = [], [], []
    mix = ""
    for name, proposal in (("email marketing", EMAIL), ("sms marketing", SMS)):
        check_audience(snap, proposal, policy, NOW)  # warm: plans, zone spans
        best_cpu = best_wall = math.inf
        result = None
        for _ in range(rounds):
            w0, c0 = time.perf_counter(), time.process_time()
            result = check_audience(snap, proposal, policy, NOW)
            best_cpu = min(best_cpu, time.process_time() - c0)
            best_wall = min(best_wall, time.perf_counter() - w0)
        assert result is not None
        r0 = time.perf_counter()
        reasons = sum(
            len(result.outcome(i).reasons) for i in range(len(result)) if result.verdict[i]
        )
        r_time = time.perf_counter() - r0
        # Two processes, each checking half of the audience: half snapshots built in the
        # parent beforehand, inherited by fork (a service would keep a shard of its state
        # per worker); the span is the parent's, from dispatch to both answers back.
        _HALVES[:] = [Snapshot.build(built[: count // 2]), Snapshot.build(built[count // 2 :])]
        spans = []
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(2) as pool:
            pool.map(_check_half, [(0, proposal), (1, proposal)])  # warm both workers
            for _ in range(rounds):
                w0 = time.perf_counter()
                pool.map(_check_half, [(0, proposal), (1, proposal)], chunksize=1)
                spans.append(time.perf_counter() - w0)
        two_wall = min(spans)
        cpu_rate, wall_rate = count / best_cpu, count / best_wall
        load = os.getloadavg()
        log(
            f"{name}: 1 process {count / best_wall:,.0f}/s wall, {cpu_rate:,.0f}/CPU s; "
            f"2 processes {count / two_wall:,.0f}/s wall (rounds: "
            + ", ".join(f"{s:.3f}" for s in spans)
            + f" s); load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        figures.append(
            Figure(
                f"audience {name}: decisions per CPU second (1 core)",
                round(cpu_rate),
                "decisions/s",
                None,
                None,
            )
        )
        figures.append(
            Figure(
                f"audience {name}: decisions per wall second, 2 processes",
                round(count / two_wall),
                "decisions/s",
                "≥ 1,000,000",
                count / two_wall >= 1_000_000,
            )
        )
        paths = result.paths
        rows.append(
            [
                name,
                " / ".join(f"{x:.2f}" for x in load),
                f"{count:,}",
                f"{best_cpu:.3f}",
                f"{cpu_rate:,.0f}",
                f"{wall_rate:,.0f}",
                f"{count / two_wall:,.0f}",
                f"{paths['vector']:,}",
                f"{paths['engine']:,}",
                f"{r_time:.2f}",
            ]
        )
        by_rule = dict(sorted(result.by_rule().items(), key=lambda kv: -kv[1]))
        mix += f"{name}: {result.counts()}; by rule {by_rule}. "
        notes.append(
            f"{name}: reasons for the {int((result.verdict > 0).sum()):,} customers held "
            f"back ({reasons:,} reasons) take {r_time:.2f} s more, produced on demand."
        )
    table = Table(
        f"Vectorized check over {count:,} customers in memory "
        f"(snapshot built in {t2 - t1:.1f} s beforehand)",
        [
            "proposal",
            "load avg 1/5/15 min",
            "customers",
            "CPU s (1 core)",
            "decisions/CPU s",
            "decisions/wall s (1 proc)",
            "decisions/wall s (2 procs)",
            "vector path",
            "engine path",
            "reasons s",
        ],
        rows,
    )
    return figures, [table], notes, mix


_HALVES: list[Snapshot] = []
_POLICY = Policy.load("courtesy")


def _check_half(args: tuple[int, ContactProposal]) -> int:
    """Check one half (inherited by fork); how many customers are allowed."""
    part, proposal = args
    return int((check_audience(_HALVES[part], proposal, _POLICY, NOW).verdict == 0).sum())


# -- (2) end to end ----------------------------------------------------------------------


def bulk_load(url: str, count: int) -> float:
    """Customers, events and contacts inserted in bulk (executemany, one transaction per
    10,000 customers): the ledger, not the API's write path."""
    from tactful.store import open_store
    from tactful.store.sql import SqlStore, _profile_data, contacts, customers, events

    store = open_store(url)
    assert isinstance(store, SqlStore)
    rng = random.Random(2)
    started = time.perf_counter()
    batch: list[tuple[CustomerProfile, list[Event], list[Contact]]] = []

    def flush() -> None:
        with store._transaction(write=True) as conn:
            conn.execute(
                customers.insert(),
                [
                    {
                        "customer_id": p.customer_id,
                        "profile": _profile_data(p),
                        "created": NOW,
                        "updated": NOW,
                        "version": 1,
                    }
                    for p, _, _ in batch
                ],
            )
            ev = [
                {
                    "customer_id": e.customer_id,
                    "kind": e.kind,
                    "at": e.at,
                    "event_id": e.event_id,
                    "properties": dict(e.properties),
                    "received_at": NOW,
                }
                for _, es, _ in batch
                for e in es
            ]
            if ev:
                conn.execute(events.insert(), ev)
            cs = [
                {
                    "contact_id": c.contact_id,
                    "customer_id": c.customer_id,
                    "channel": c.channel,
                    "purpose": c.purpose,
                    "at": c.at,
                    "status": str(c.status),
                    "outcome": c.outcome,
                    "hold_expires": c.hold_expires,
                    "trigger_event": None,
                    "trigger_at": None,
                    "offer": None,
                    "campaign": c.campaign,
                    "source": None,
                    "flags": [],
                    "tags": {},
                }
                for _, _, cs_ in batch
                for c in cs_
            ]
            if cs:
                conn.execute(contacts.insert(), cs)
        batch.clear()

    for i in range(count):
        batch.append(ledger(rng, f"cust-{i:07d}"))
        if len(batch) >= 10_000:
            flush()
    if batch:
        flush()
    store.close()
    return time.perf_counter() - started


def end_to_end(url: str, count: int, policy: Policy) -> dict[str, Any]:
    """Run in a fresh process (peak RSS is the process's own)."""
    from tactful.store import open_store
    from tactful.store.audience import Summary, check_store

    store = open_store(url)
    ids = [f"cust-{i:07d}" for i in range(count)]
    summary = Summary()
    w0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _ in check_store(
        store, ids, EMAIL, policy, lambda: NOW, if_suppressed=_no_erased, summary=summary
    ):
        n += 1
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    store.close()
    return {
        "customers": n,
        "wall": wall,
        "cpu": cpu,
        "rss": peak_rss_mb(),
        "summary": summary.as_dict(),
    }


def _no_erased(state: CustomerState, p: ContactProposal, now: datetime) -> Any:
    raise RuntimeError("no erased customers in the benchmark")


def _e2e_child(args: tuple[str, int]) -> dict[str, Any]:
    return end_to_end(args[0], args[1], Policy.load("courtesy"))


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=1_000_000, help="In-memory audience size.")
    parser.add_argument(
        "--store-customers", type=int, default=1_000_000, help="End-to-end audience size (0: skip)."
    )
    parser.add_argument("--rounds", type=int, default=5, help="Best of this many runs.")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "TACTFUL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/tactful_bench_audience"
        ),
    )
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_audience.py", argv)
    policy = Policy.load("courtesy")
    result = Result(
        "audience",
        "Audience checks: vectorized decisions, and whole audiences against the stores",
        command,
    )
    figures, tables, notes, mix = in_memory(args.customers, policy, args.rounds)
    for f in figures:
        f.command = command
    result.figures += figures
    result.tables += tables
    result.notes += notes
    result.notes.append(
        "Mix: " + __doc__.split("The mix (seeded): ")[1].split("\n\n")[0].replace("\n", " ")
    )
    result.notes.append("Verdicts: " + mix)
    if args.store_customers:
        rows = []
        for name in args.stores.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{tmp}/audience.db" if name == "sqlite" else _fresh_pg(args.pg)
                load = bulk_load(url, args.store_customers)
                log(f"{name}: {args.store_customers:,} customers loaded in {load:.1f} s")
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    out = pool.map(_e2e_child, [(url, args.store_customers)])[0]
                log(
                    f"{name}: checked in {out['wall']:.1f} s, "
                    f"peak RSS {out['rss']:.0f} MB; {out['summary']}"
                )
                rate = out["customers"] / out["wall"]
                rows.append(
                    [
                        name,
                        f"{out['customers']:,}",
                        f"{load:.0f}",
                        f"{out['wall']:.1f}",
                        f"{out['cpu']:.1f}",
                        f"{rate:,.0f}",
                        f"{out['rss']:.0f}",
                        str(out["summary"]["paths"]),
                    ]
                )
                result.figures.append(
                    Figure(
                        f"audience end to end, {name}: {out['customers']:,} customers",
                        round(out["wall"], 1),
                        "s",
                        None,
                        None,
                        command,
                    )
                )
                result.figures.append(
                    Figure(
                        f"audience end to end, {name}: peak RSS",
                        round(out["rss"]),
                        "MB",
                        None,
                        None,
                        command,
                    )
                )
        result.tables.append(
            Table(
                "Whole audience against a store (email marketing; every line with reasons)",
                [
                    "store",
                    "customers",
                    "bulk load s",
                    "check wall s",
                    "check CPU s",
                    "customers/s",
                    "peak RSS MB",
                    "paths",
                ],
                rows,
            )
        )
    return result


def _fresh_pg(url: str) -> str:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url


if __name__ == "__main__":
    run(main)
