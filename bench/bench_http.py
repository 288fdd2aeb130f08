"""HTTP decide with a durable hold: a real `tactful serve` on loopback, 32 concurrent clients.

Per store (SQLite file, then a fresh PostgreSQL database made for the run and dropped
after): seed 10,000 customers (profiles in several time zones; a share with history: a few
events and past contacts, some opt-outs, snoozes and declines), start the server, warm up,
then measure closed-loop `POST /v1/decisions` with a `decide` key and a mix of channels
and purposes, each request with its own idempotency key. Reports decisions/s, latency
percentiles and errors, and checks afterwards that every answered decision is in the audit
log. Target (PRODUCT.md): >= 2,000/s with p99 <= 25 ms on 2 cores, on both stores.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import load
from profile_summary import summarise
from report import Figure, Result, Table, arguments, command_line, log, run, without

from tactful.model import Contact, ContactStatus, CustomerProfile, Event, Outcome
from tactful.service.testing import Server
from tactful.store import open_store
from tactful.store.base import Store

TARGET_RATE = 2000.0
TARGET_P99_MS = 25.0
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

ZONES = (
    ("America/New_York", "US"),
    ("America/Chicago", "US"),
    ("America/Los_Angeles", "US"),
    ("Europe/London", "GB"),
    ("Europe/Paris", "FR"),
    ("Europe/Berlin", "DE"),
    ("Australia/Sydney", "AU"),
)
BROWSING = ("session_started", "page_viewed", "product_viewed", "signed_in", "searched")


# -- data ----------------------------------------------------------------------------------


def seed(store: Store, customers: int, history: float, rng: random.Random) -> dict[str, int]:
    """Profiles for every customer; events and past contacts for a `history` share."""
    now = datetime.now(UTC)
    events: list[Event] = []
    contacts: list[Contact] = []
    profiles = []
    for i in range(customers):
        zone, country = ZONES[i % len(ZONES)]
        profiles.append(CustomerProfile(load.customer_id(i), timezone=zone, country=country))
    put_profiles(store, profiles)
    for i in range(customers):
        cid = load.customer_id(i)
        if rng.random() >= history:
            continue
        for n in range(rng.randint(2, 8)):
            at = now - timedelta(days=rng.uniform(0.1, 45))
            kind = rng.choice(BROWSING)
            props: dict[str, object] = {"session_id": f"{cid}-s{n // 3}"}
            events.append(Event(cid, kind, at, f"{cid}-e{n}", props))
        special = rng.random()
        if special < 0.03:
            events.append(Event(cid, "opted_out", now - timedelta(days=3), f"{cid}-optout"))
        elif special < 0.05:
            until = (now + timedelta(days=10)).isoformat()
            events.append(Event(cid, "snooze_requested", now - timedelta(days=1), f"{cid}-snz",
                                {"until": until}))  # fmt: skip
        elif special < 0.08:
            events.append(Event(cid, "offer_declined", now - timedelta(days=5), f"{cid}-dec",
                                {"offer": "premium-plan"}))  # fmt: skip
        elif special < 0.10:
            # Browsing right now: the "never interrupt" rules defer sales and marketing.
            events.append(Event(cid, "page_viewed", now - timedelta(minutes=2), f"{cid}-live"))
        for n in range(rng.randint(1, 5)):
            channel, purpose = rng.choice(
                (("email", "marketing"), ("email", "marketing"), ("sms", "marketing"),
                 ("call", "sales"), ("push", "marketing"), ("email", "transactional"))
            )  # fmt: skip
            outcome = None
            if channel == "call":
                outcome = rng.choice((Outcome.NO_ANSWER, Outcome.ANSWERED, Outcome.VOICEMAIL))
            contacts.append(
                Contact(
                    f"{cid}-k{n}",
                    cid,
                    channel,
                    purpose,
                    now - timedelta(days=rng.uniform(0.5, 30)),
                    status=ContactStatus.SENT,
                    outcome=outcome,
                    campaign="spring",
                )
            )
    for start in range(0, len(events), 5000):
        store.add_events(events[start : start + 5000], received_at=now)
    for start in range(0, len(contacts), 5000):
        store.add_contacts(contacts[start : start + 5000])
    return {"customers": customers, "events": len(events), "contacts": len(contacts)}


def put_profiles(store: Store, profiles: list[CustomerProfile]) -> None:
    """What `put_profile` writes for profiles without phones or emails, in one statement
    (10,000 transactions took a minute on a busy PostgreSQL)."""
    from sqlalchemy import insert

    from tactful.store.sql import SqlStore, customers

    if not isinstance(store, SqlStore) or any(p.phones or p.emails for p in profiles):
        for p in profiles:
            store.put_profile(p)
        return
    now = datetime.now(UTC)
    rows = [
        {"customer_id": p.customer_id, "created": now, "updated": now,
         "profile": {"timezone": p.timezone, "country": p.country, "subdivision": None,
                     "phones": [], "emails": [], "consent": {}, "preferences": {}}}
        for p in profiles
    ]  # fmt: skip
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(customers), rows[start : start + 2000])


@contextmanager
def database(kind: str, workdir: Path, admin_url: str) -> Iterator[str]:
    """A store URL of this kind, gone after the run."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"tactful_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def count_decisions(url: str) -> int:
    from sqlalchemy import func, select

    from tactful.store.sql import SqlStore, decisions

    store = open_store(url, migrate=False)
    assert isinstance(store, SqlStore)
    try:
        with store.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(decisions)).scalar_one())
    finally:
        store.close()


# -- CPU accounting ------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_pids(url: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark's database (the server's pool)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))
        return [int(r[0]) for r in rows]


class CpuMeter:
    """CPU used while measuring, by the server, the database backends and the generator:
    they share the machine's cores, so this says where a decision's cost goes."""

    def __init__(self, server: list[int], database: Callable[[], list[int]]) -> None:
        self.server = server
        self.database = database
        self.start = self._sample()

    def _sample(self) -> tuple[dict[int, float], dict[int, float], float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        generator = children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime
        return (
            {p: _cpu_seconds(p) for p in self.server},
            {p: _cpu_seconds(p) for p in self.database()},
            generator,
        )

    def stop(self) -> CpuUse:
        end = self._sample()

        def spent(before: dict[int, float], after: dict[int, float]) -> float:
            # Backends that came meanwhile count whole; those gone took theirs with them.
            return sum(max(0.0, t - before.get(p, 0.0)) for p, t in after.items())

        return CpuUse(
            spent(self.start[0], end[0]), spent(self.start[1], end[1]), end[2] - self.start[2]
        )


@dataclass
class CpuUse:
    server: float
    database: float
    generator: float

    def per(self, decisions: int) -> dict[str, float]:
        n = max(1, decisions)
        return {
            "server": round(1000 * self.server / n, 3),
            "database": round(1000 * self.database / n, 3),
            "generator": round(1000 * self.generator / n, 3),
        }


# -- profiling -----------------------------------------------------------------------------


@contextmanager
def profiled(server: Server, out: Path | None, seconds: float) -> Iterator[None]:
    """py-spy records the server's processes while the block runs (if asked for)."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    procs = []
    for pid in server.pids:
        target = out.with_name(f"{out.stem}-{pid}.speedscope.json")
        procs.append(
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds) + 1),
                    "--rate",
                    "200",
                    "--format",
                    "speedscope",
                    "--output",
                    str(target),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        yield
    finally:
        for p in procs:
            p.wait(timeout=seconds + 30)


# -- one store -----------------------------------------------------------------------------


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> tuple[load.LoadResult, dict[
    str, object]]:  # fmt: skip
    rng = random.Random(args.seed)
    with database(kind, workdir, args.pg_admin_url) as url:
        store = open_store(url)
        try:
            started = time.monotonic()
            seeded = seed(store, args.customers, args.history, rng)
            log(f"[{kind}] seeded {seeded} in {time.monotonic() - started:.1f}s")
            _, key = store.create_key(["decide"], name="bench", now=datetime.now(UTC))
        finally:
            store.close()
        workers = args.workers_sqlite if kind == "sqlite" else args.workers_postgresql
        env = {"TACTFUL_HOLD_TTL_SECONDS": "900"}
        log_file = workdir / f"{kind}-server.log"
        with Server(url, workers=workers, log=log_file, env=env, cwd=workdir) as server:
            options = {"clients": args.clients, "customers": args.customers, "seed": args.seed}
            if args.warmup > 0:
                warm = load.run(args.generator, server.base, key, seconds=args.warmup,
                                prefix="warm", **options)  # fmt: skip
                log(f"[{kind}] warm-up: {warm.per_second:.0f}/s, {warm.errors} errors")
            profile = args.profile / f"http-{kind}" if args.profile else None
            windows: list[tuple[load.LoadResult, CpuUse]] = []
            for window in range(args.windows):
                backends = (lambda: database_pids(url)) if kind == "postgresql" else list
                meter = CpuMeter(server.pids, backends)
                with profiled(server, profile if window == 0 else None, args.duration):
                    run = load.run(args.generator, server.base, key, seconds=args.duration,
                                   prefix=f"run{window}", **options)  # fmt: skip
                windows.append((run, meter.stop()))
                log(f"[{kind}] window {window + 1}: {run.per_second:.0f}/s, "
                    f"p99 {run.latency_ms['p99']:.1f} ms")  # fmt: skip
        # The median window by throughput: other work on the machine comes in bursts.
        ordered = sorted(windows, key=lambda w: w[0].per_second)
        result, cpu = ordered[len(ordered) // 2]
        if result.errors:
            # What the server said about it (its log goes with the temporary directory).
            tail = log_file.read_text(errors="replace").splitlines()[-40:]
            log(f"[{kind}] statuses {result.statuses}; the server's log ends:\n" + "\n".join(tail))
        stored = count_decisions(url)
        answered = sum(w.ok for w, _ in windows) + (warm.ok if args.warmup > 0 else 0)
        log(
            f"[{kind}] {result.per_second:.0f} decisions/s, p50 {result.latency_ms['p50']:.1f} "
            f"ms, p99 {result.latency_ms['p99']:.1f} ms, errors {result.errors}, "
            f"verdicts {result.verdicts}; {stored} decisions stored for {answered} answered; "
            f"CPU ms per decision: {cpu.per(result.ok)}"
        )
        info: dict[str, object] = {
            **seeded,
            "workers": workers,
            "stored": stored,
            "answered": answered,
            "cpu": cpu.per(result.ok),
            "windows": [round(w.per_second) for w, _ in windows],
        }
        return result, info


def profile_tables(kind: str, files: list[Path], folder: Path) -> list[Table]:
    """The py-spy recording of the server's first window, summarised (profile_summary.py)."""
    if not files:
        return []
    layers, functions, seconds = summarise(files)
    where = f"{kind}, {seconds:.1f} s of server samples, first window; files in {folder}"
    return [
        Table(f"Profile ({where}): share of samples by layer (self time)",
              ["layer", "% of samples"], layers),
        Table(f"Profile ({kind}): tactful functions by inclusive share",
              ["function", "% of samples"], functions),
    ]  # fmt: skip


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--stores",
        default="sqlite,postgresql",
        help="Comma-separated: sqlite, postgresql (default both).",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="Seconds per measured window (default 5)."
    )
    parser.add_argument(
        "--windows", type=int, default=3, help="Windows per store; the median one is reported."
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds of warm-up first.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent connections.")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--history",
        type=float,
        default=0.3,
        help="Share of customers with past events and contacts.",
    )
    parser.add_argument("--workers-sqlite", type=int, default=1)
    parser.add_argument("--workers-postgresql", type=int, default=2)
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk if installed (auto), else the asyncio client.",
    )
    parser.add_argument(
        "--pg-admin-url",
        default=PG_ADMIN_URL,
        help="Where to create (and drop) the benchmark's database.",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="Record the server with py-spy into this directory.",
    )
    parser.add_argument("--seed", type=int, default=7)
    arguments(parser)
    args = parser.parse_args(argv)
    notes: list[str] = []
    if args.generator == "auto":
        args.generator = "wrk" if load.have_wrk() else "python"
        if args.generator == "python":
            notes.append(
                "wrk is not installed (`apt-get install -y wrk`): the asyncio client was "
                "used, which takes more of the 2 cores from the server."
            )
            log("note: " + notes[-1])
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    command = command_line("bench_http.py", argv)
    result = Result("http", "HTTP decide with a durable hold", command, notes=notes)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp:
        for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
            started = time.time()
            load_result, info = measure(kind, args, Path(tmp))
            if args.profile:
                recorded = [f for f in sorted(args.profile.glob(f"http-{kind}-*.speedscope.json"))
                            if f.stat().st_mtime >= started]  # fmt: skip
                result.tables += profile_tables(kind, recorded, args.profile)
            lat = load_result.latency_ms
            rate_met = load_result.per_second >= TARGET_RATE
            p99_met = lat["p99"] <= TARGET_P99_MS
            store_command = command_line(
                "bench_http.py", [*without(argv, "--stores"), "--stores", kind]
            )
            result.figures += [
                Figure(f"{kind}: decisions/s", round(load_result.per_second, 1), "decisions/s",
                       "≥ 2,000", rate_met, store_command),
                Figure(f"{kind}: p99 latency", round(lat["p99"], 2), "ms", "≤ 25", p99_met,
                       store_command),
                Figure(f"{kind}: server CPU per decision",
                       cast(dict[str, float], info["cpu"])["server"], "ms", None, None,
                       store_command),
                Figure(f"{kind}: errors", load_result.errors, "responses", "0",
                       load_result.errors == 0, store_command),
            ]  # fmt: skip
            cpu_per = cast(dict[str, float], info["cpu"])
            windows_seen = cast(list[int], info["windows"])
            total = sum(load_result.verdicts.values()) or 1
            mix = ", ".join(
                f"{v} {100 * n / total:.0f}%" for v, n in sorted(load_result.verdicts.items())
            )
            rows.append([
                kind, info["workers"], f"{load_result.per_second:,.0f}",
                f"{lat['p50']:.1f}", f"{lat['p90']:.1f}", f"{lat['p99']:.1f}",
                f"{lat['p99.9']:.1f}", load_result.errors, mix,
                f"{info['stored']}/{info['answered']}",
                " / ".join(f"{v:.2f}" for v in cpu_per.values()),
                ", ".join(f"{w:,}" for w in windows_seen),
            ])  # fmt: skip
            if load_result.errors:
                result.notes.append(f"{kind}: statuses {load_result.statuses}")
            if int(str(info["stored"])) < int(str(info["answered"])):
                result.notes.append(
                    f"{kind}: only {info['stored']} decisions stored for {info['answered']} "
                    "answered: acknowledged decisions are missing"
                )
    result.tables.append(
        Table(
            f"{args.clients} clients, the median of {args.windows} windows of "
            f"{args.duration:g} s after {args.warmup:g} s warm-up, generator {args.generator}; "
            f"{args.customers:,} customers, "
            f"{args.history:.0%} with history (latency in ms)",
            [
                "store",
                "workers",
                "decisions/s",
                "p50",
                "p90",
                "p99",
                "p99.9",
                "errors",
                "verdicts",
                "audit rows / answered (in-flight at the end add a few)",
                "CPU ms per decision: server / database / generator",
                "windows (decisions/s)",
            ],
            rows,
        )
    )
    return result


if __name__ == "__main__":
    # Stopped from outside: still stop the server and drop the database on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run(main)
