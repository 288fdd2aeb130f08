"""Release throughput: queued proposals that all fell due, released by `tactful worker`
processes on PostgreSQL (re-decided, hold placed, outbox row written in one transaction,
then delivered to a local webhook receiver).

The queue is filled directly (one marketing email per customer, due a minute ago, one
webhook subscribed), then the workers start; the figure is queued items released per
second of wall time until the last one is out, with the workers' CPU seconds beside it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from bench_http import PG_ADMIN_URL, database
from report import Figure, Result, Table, arguments, command_line, log, run
from sqlalchemy import func, insert, select

from tactful.model import ContactProposal, Event
from tactful.service.testing import TACTFUL
from tactful.store import open_store
from tactful.store.delivery import delivery_store, outbox, queued
from tactful.store.sql import SqlStore, proposal_data


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def fill(store: SqlStore, n: int, hook: str) -> None:
    now = datetime.now(UTC)
    ids = [f"r{i:07d}" for i in range(n)]
    for start in range(0, n, 5000):
        chunk = ids[start : start + 5000]
        store.add_events(
            [Event(c, "page_viewed", now - timedelta(days=30), f"e-{c}") for c in chunk],
            received_at=now,
        )
    delivery_store(store).add_webhook(hook, source="shop", secret="whsec_bench_0123456789", now=now)
    rows = []
    for c in ids:
        p = ContactProposal(c, "email", "marketing", source="shop", campaign="bench")
        rows.append(
            {
                "id": "q_" + uuid.uuid4().hex,
                "customer_id": c,
                "proposal": proposal_data(p),
                "priority": 0,
                "lane": 1,
                "source": "shop",
                "created_at": now - timedelta(minutes=2),
                "due_at": now - timedelta(minutes=1),
                "expires_at": None,
                "status": "queued",
                "decision_id": None,
                "attempts": 0,
            }
        )
    with store.engine.begin() as conn:
        for start in range(0, n, 5000):
            conn.execute(insert(queued), rows[start : start + 5000])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    store = cast(SqlStore, open_store(url))
    try:
        fill(store, args.items, f"http://127.0.0.1:{sink.server_address[1]}/hook")
        log(f"queued {args.items} items; starting {args.workers} workers")
        env = {
            **os.environ,
            "TACTFUL_WORKER_POLL_SECONDS": "0.05",
            "TACTFUL_WORKER_BATCH": str(args.batch),
        }
        started = time.perf_counter()
        procs = [
            subprocess.Popen(
                [*TACTFUL, "worker", "--database-url", url, "--name", f"bench-{i}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for i in range(args.workers)
        ]
        cpu: dict[int, float] = {}
        released = delivered = 0
        try:
            while True:
                with store.engine.connect() as conn:
                    released = int(
                        conn.execute(
                            select(func.count()).where(queued.c.status == "released")
                        ).scalar_one()
                    )
                for p in procs:
                    cpu[p.pid] = _cpu_seconds(p.pid)
                if released >= args.items:
                    break
                if time.perf_counter() - started > args.timeout:
                    raise SystemExit(f"only {released} of {args.items} released in time")
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            with store.engine.connect() as conn:
                delivered = int(
                    conn.execute(
                        select(func.count()).where(outbox.c.state == "delivered")
                    ).scalar_one()
                )
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
    finally:
        store.close()
        sink.shutdown()
    return {
        "rate": args.items / elapsed,
        "elapsed": elapsed,
        "cpu": sum(cpu.values()),
        "delivered": delivered,
    }


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=5000, help="Queued items (one a customer).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50, help="TACTFUL_WORKER_BATCH.")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_release.py", argv)
    result = Result("release", "Queue releases by worker processes on PostgreSQL", command)
    with (
        tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp,
        database("postgresql", Path(tmp), args.pg_admin_url) as url,
    ):
        m = measure(url, args)
    result.figures.append(
        Figure(
            f"PostgreSQL, {args.workers} workers: releases/s",
            round(m["rate"]),
            "releases/s",
            command=command,
        )
    )
    result.tables.append(
        Table(
            f"{args.items:,} items due at once, {args.workers} `tactful worker` processes, "
            f"batch {args.batch}",
            ["releases/s", "seconds", "worker CPU s per 1,000 releases", "delivered meanwhile"],
            [
                [
                    f"{m['rate']:,.0f}",
                    f"{m['elapsed']:.2f}",
                    f"{1000 * m['cpu'] / args.items:.2f}",
                    f"{int(m['delivered']):,}",
                ]
            ],
        )
    )
    result.notes.append(
        "Each release re-decides the proposal under `courtesy` with the customer's row "
        "locked, places the hold, marks the queue item released and writes the outbox row "
        "in one transaction; the same workers also deliver the outbox to a local receiver "
        "(HTTP 204), so the figure includes that work. Worker start-up (imports, "
        "connecting) is inside the time."
    )
    return result


if __name__ == "__main__":
    run(main)
