"""Memory per customer in state: what one folded `CustomerState` costs the process that
holds it (the store's state cache keeps up to `TACTFUL_STATE_CACHE_SIZE`, default 20,000,
of them per process).

Three histories: a heavy customer (50 past contacts, 200 events, as the engine benchmark's),
a light one (3 contacts, 10 events) and a profile only. For each, `--customers` of them are
written to a fresh SQLite store and loaded back through `Store.load_state` (what the cache
keeps on a miss), then decided once each for a marketing email, a sales call and a push
(the memo of derived facts a cached state carries after serving decisions). Bytes are
Python allocations measured with `tracemalloc` (retained after a full collection), divided
by the number of customers; the store's own cache is off so only the list below holds them.
"""

from __future__ import annotations

import argparse
import gc
import random
import tempfile
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from bench_engine import START, ZONES, _contacts, _events
from report import Figure, Result, Table, arguments, command_line, log, run

from tactful.engine import decide
from tactful.model import ContactProposal, CustomerProfile
from tactful.policy.document import Policy
from tactful.state import CustomerState
from tactful.store import open_store
from tactful.store.base import Store

#: (name, contacts, events)
HISTORIES = (
    ("heavy (50 contacts, 200 events)", 50, 200),
    ("light (3 contacts, 10 events)", 3, 10),
    ("profile only", 0, 0),
)
DEFAULT_CACHE = 20_000


def seed(store: Store, prefix: str, n: int, contacts: int, events: int, rng: random.Random) -> list[
    str]:  # fmt: skip
    ids = []
    for i in range(n):
        cid = f"{prefix}-{i:05d}"
        zone, country, phone = ZONES[i % len(ZONES)]
        store.put_profile(CustomerProfile(cid, timezone=zone, country=country, phones=(phone,)))
        if events:
            store.add_events(_events(rng, cid, START, events), received_at=START)
        if contacts:
            store.add_contacts(_contacts(rng, cid, START, contacts))
        ids.append(cid)
    return ids


def retained() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


PROPOSALS = (("email", "marketing"), ("call", "sales"), ("push", "service"))
#: Customers decided first and not counted: the first decisions import modules and fill
#: per-country calendars, which a long-running process pays once.
WARM = 10


def measure(store: Store, ids: list[str], policy: Policy) -> tuple[float, float]:
    """Bytes per customer: loaded, and after three decisions each (memo filled)."""

    def decide_all(states: list[CustomerState]) -> None:
        for state in states:
            cid = state.profile.customer_id
            for channel, purpose in PROPOSALS:
                decide(state, ContactProposal(cid, channel, purpose), policy, START)

    decide_all([store.load_state(cid) for cid in ids[:WARM]])
    before = retained()
    states = [store.load_state(cid) for cid in ids[WARM:]]
    loaded = retained()
    decide_all(states)
    decided = retained()
    n = len(states)
    del states
    return (loaded - before) / n, (decided - before) / n


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=400, help="Customers per history.")
    parser.add_argument("--policy", default="courtesy")
    parser.add_argument("--seed", type=int, default=7)
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_memory.py", argv)
    rng = random.Random(args.seed)
    policy = Policy.load(args.policy)
    result = Result("memory", "Memory per customer in state", command)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'memory.db'}", state_cache=0)
        try:
            tracemalloc.start()
            for n, (name, contacts, events) in enumerate(HISTORIES):
                log(f"seeding {args.customers} customers: {name} ...")
                ids = seed(store, f"m{n}", args.customers, contacts, events, rng)
                loaded, decided = measure(store, ids, policy)
                log(f"{name}: {loaded:,.0f} B loaded, {decided:,.0f} B after decisions")
                cache_mib = decided * DEFAULT_CACHE / 2**20
                rows.append([name, round(loaded), round(decided), round(cache_mib, 1)])
                short = name.split(" (")[0]
                result.figures.append(
                    Figure(f"memory: {short} customer in state", round(decided), "bytes",
                           command=command)
                )  # fmt: skip
        finally:
            tracemalloc.stop()
            store.close()
    result.tables.append(
        Table(
            f"{args.customers} customers per history, SQLite store, policy {args.policy}, "
            "Python allocations per customer (tracemalloc)",
            ["history", "bytes, loaded", "bytes, after 3 decisions", "MiB for 20,000 cached"],
            rows,
        )
    )
    result.notes += [
        "'Loaded' is the state `Store.load_state` folds from the ledger; 'after 3 decisions' "
        "adds what the rules memoise on it (counts, matching contacts, derived facts), "
        "which is what the state cache holds for a customer who is being contacted.",
        f"The state cache keeps up to {DEFAULT_CACHE:,} customers per process "
        "(TACTFUL_STATE_CACHE_SIZE); the last column is that many of one kind.",
        "States are folded by the measured tree's `tactful/state.py`: a change to the fold "
        "shows here.",
    ]
    return result


if __name__ == "__main__":
    run(main)
