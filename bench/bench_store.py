"""A decision with a durable hold through the store, in process (no HTTP): what the store
adds to the engine, on SQLite and on a fresh PostgreSQL database.

Cases, each for a fixed time after a warm-up: the HTTP benchmark's mix of proposals over
its 10,000 seeded customers (one decision after another, so this is latency, not
concurrency), the same mix decided in groups of `--group` to a transaction (as the
service does with requests that arrive together), one heavy customer (50 past contacts,
200 events) asked again and again, one proposal in four placing a hold, and one customer
with a phone and an email (dry runs: what checking their addresses against the
suppression list adds). Besides the wall-clock
rate, the benchmark's own CPU time per decision (with SQLite that is all of it; with
PostgreSQL the server's share is not counted) is reported: it varies less with the load
that other processes put on the machine. `--state-cache 0` turns off the folded-state cache.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import load
from bench_http import PG_ADMIN_URL, database, seed
from report import Figure, Result, Table, arguments, command_line, log, run

from tactful.model import Contact, ContactProposal, CustomerProfile, Event, Outcome
from tactful.service.config import Settings
from tactful.service.runtime import Runtime
from tactful.service.schemas import ProposalIn
from tactful.store import open_store
from tactful.store.base import Store

HEAVY = "heavy-customer"
ADDRESSED = "addressed-customer"
COLUMNS = ["store", "mix: decisions/s", "mix: ms each", "mix: CPU ms", "grouped: decisions/s",
           "grouped: CPU ms", "heavy: ms each",
           "heavy: CPU ms", "addresses: ms each", "addresses: CPU ms"]  # fmt: skip


def proposals(n: int, customers: int, rng: random.Random, prefix: str) -> list[ContactProposal]:
    """The HTTP benchmark's mix, as domain proposals."""
    weights = [w for w, _ in load.MIX]
    fields = [json.loads("{" + f + "}") for _, f in load.MIX]
    out = []
    for i in range(n):
        body = {
            "customer_id": load.customer_id(rng.randrange(customers)),
            **rng.choices(fields, weights)[0],
            "idempotency_key": f"{prefix}-{i}",
        }
        out.append(ProposalIn(**body).to_model())
    return out


def seed_heavy(store: Store, rng: random.Random) -> None:
    """One customer with 50 past contacts and 200 events over the last 90 days."""
    now = datetime.now(UTC)
    store.put_profile(CustomerProfile(HEAVY, timezone="America/Chicago", country="US"))
    kinds = ("page_viewed", "product_viewed", "session_started", "searched", "signed_in")
    store.add_events(
        [
            Event(HEAVY, rng.choice(kinds), now - timedelta(days=rng.uniform(0.5, 90)), f"h{i}",
                  {"session_id": f"s{i // 6}"})
            for i in range(200)
        ],
        received_at=now,
    )  # fmt: skip
    store.add_contacts(
        Contact(f"{HEAVY}-k{i}", HEAVY, channel, purpose,
                now - timedelta(days=rng.uniform(8, 90)), outcome=outcome)
        for i, (channel, purpose, outcome) in enumerate(
            rng.choice((("email", "marketing", None), ("call", "sales", Outcome.NO_ANSWER),
                        ("sms", "marketing", None), ("call", "sales", Outcome.ANSWERED)))
            for _ in range(50)
        )
    )  # fmt: skip


def seed_addressed(store: Store) -> None:
    """A customer with a phone and an email, and a suppression list by address that holds
    another number (another record's STOP), so the address check has a table to look in."""
    now = datetime.now(UTC)
    store.put_profile(CustomerProfile("stopper", phones=("+13125550100",)))
    store.add_events(
        [Event("stopper", "opted_out", now - timedelta(days=1), "stop-1", {"channel": "sms"})],
        received_at=now,
    )
    phones, emails = ("+13125550142",), ("ann@example.com",)
    store.put_profile(
        CustomerProfile(ADDRESSED, "America/Chicago", "US", phones=phones, emails=emails)
    )


def timed(
    runtime: Runtime, items: list[tuple[ContactProposal, bool]], seconds: float
) -> tuple[float, float]:
    """Decisions per second over `seconds` (cycling through `items`), and this process's
    CPU milliseconds per decision."""
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        proposal, hold = items[done % len(items)]
        runtime.decide(proposal, hold=hold)
        done += 1
    rate = done / (time.perf_counter() - started)
    return rate, 1000 * (time.process_time() - cpu) / done


def timed_groups(
    runtime: Runtime, proposals: list[ContactProposal], size: int, seconds: float
) -> tuple[float, float]:
    """`timed` for `Runtime.decide_many` on groups of `size` proposals."""
    done = 0
    started, cpu = time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        start = done % len(proposals)
        runtime.decide_many(proposals[start : start + size])
        done += len(proposals[start : start + size])
    rate = done / (time.perf_counter() - started)
    return rate, 1000 * (time.process_time() - cpu) / done


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    rng = random.Random(args.seed)
    with database(kind, workdir, args.pg_admin_url) as url:
        options: dict[str, Any] = {}
        if args.state_cache is not None:
            options["state_cache"] = args.state_cache
        store = open_store(url, **options)
        try:
            seed(store, args.customers, args.history, rng)
            seed_heavy(store, rng)
            seed_addressed(store)
            runtime = Runtime(Settings(database_url=url), store)
            stamp = f"{time.time():.0f}"
            mixed = [(p, True) for p in proposals(100_000, args.customers, rng, f"m{stamp}")]
            timed(runtime, mixed[:2000], args.warmup)
            mix_rate, mix_cpu = timed(runtime, mixed[2000:50_000], args.duration)
            # The same mix in groups, one transaction each (what the service does with
            # requests that arrive together: Runtime.decide_soon).
            grouped = [p for p, _ in mixed[50_000:]]
            group_rate, group_cpu = timed_groups(runtime, grouped, args.group, args.duration)
            # A dry run (no hold) three times in four, a marketing email (held, until its
            # cap of 3 a week defers it) the fourth.
            heavy = [
                (ContactProposal(HEAVY, *(("email", "marketing") if i % 4 == 0 else
                                          ("push", "service")), idempotency_key=f"h{stamp}-{i}"),
                 i % 4 == 0)
                for i in range(200_000)
            ]  # fmt: skip
            timed(runtime, heavy[:200], min(args.warmup, 1.0))
            heavy_rate, heavy_cpu = timed(runtime, heavy[200:], args.duration)
            addressed = [(ContactProposal(ADDRESSED, "sms", "service"), False)]
            timed(runtime, addressed, min(args.warmup, 1.0))
            addressed_rate, addressed_cpu = timed(runtime, addressed, args.duration)
        finally:
            store.close()
    log(f"[{kind}] mix: {mix_rate:,.0f} decisions/s ({mix_cpu:.3f} ms CPU each); heavy "
        f"customer: {heavy_rate:,.0f}/s ({heavy_cpu:.3f}); with addresses: "
        f"{addressed_rate:,.0f}/s ({addressed_cpu:.3f})")  # fmt: skip
    log(f"[{kind}] mix in groups of {args.group}: {group_rate:,.0f}/s ({group_cpu:.3f} ms CPU "
        "each)")  # fmt: skip
    return {"mix": mix_rate, "heavy": heavy_rate, "addressed": addressed_rate,
            "group": group_rate, "group_cpu": group_cpu, "mix_cpu": mix_cpu,
            "heavy_cpu": heavy_cpu, "addressed_cpu": addressed_cpu}  # fmt: skip


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--duration", type=float, default=5.0, help="Seconds per case.")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--history", type=float, default=0.3)
    parser.add_argument(
        "--state-cache",
        type=int,
        default=None,
        help="Customers cached (0: off; default: the store's).",
    )
    parser.add_argument(
        "--group", type=int, default=16, help="Proposals per transaction in the grouped case."
    )
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--seed", type=int, default=7)
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_store.py", argv)
    result = Result("store", "Store decide with a durable hold, in process", command)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp:
        for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
            rates = measure(kind, args, Path(tmp))
            result.figures += [
                Figure(f"{kind}: store decisions/s (mix)", round(rates["mix"]), "decisions/s",
                       command=command),
                Figure(f"{kind}: heavy customer, ms per decision",
                       round(1000 / rates["heavy"], 3), "ms", command=command),
                Figure(f"{kind}: customer with addresses, ms per decision",
                       round(1000 / rates["addressed"], 3), "ms", command=command),
            ]  # fmt: skip
            result.figures.append(
                Figure(f"{kind}: store decisions/s (mix, in groups of {args.group})",
                       round(rates["group"]), "decisions/s", command=command)
            )  # fmt: skip
            rows.append(
                [kind, f"{rates['mix']:,.0f}", f"{1000 / rates['mix']:.3f}",
                 f"{rates['mix_cpu']:.3f}", f"{rates['group']:,.0f}", f"{rates['group_cpu']:.3f}",
                 f"{1000 / rates['heavy']:.3f}",
                 f"{rates['heavy_cpu']:.3f}", f"{1000 / rates['addressed']:.3f}",
                 f"{rates['addressed_cpu']:.3f}"]
            )  # fmt: skip
    cache = "default" if args.state_cache is None else str(args.state_cache)
    result.tables.append(
        Table(
            f"One decision at a time (grouped: {args.group} to a transaction), "
            f"{args.duration:g} s per case, state cache {cache}",
            COLUMNS,
            rows,
        )
    )
    result.notes.append(
        "The heavy customer has 50 past contacts and 200 events; three proposals in four "
        "are dry runs (`hold=False`, still written to the audit log), the fourth a "
        "marketing email that places a hold until the weekly cap defers it. The customer "
        "with addresses (a phone and an email) is asked for an SMS, dry runs only: what "
        "the address check against the suppression list adds to a decision. CPU ms: this "
        "process only (with PostgreSQL, the server's share is not counted)."
    )
    return result


if __name__ == "__main__":
    run(main)
