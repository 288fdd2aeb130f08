"""`POST /v1/decisions` through the ASGI app in process, no sockets: the CPU one decision
costs the service above the HTTP server, with the decide fast path (service/fastpath.py)
and through FastAPI's route (`TACTFUL_DECIDE_FAST_PATH=0`), on SQLite and PostgreSQL.

Per store: seed the HTTP benchmark's customers (fewer of them), then alternate rounds of
the two apps on the same store, each request a new proposal from the HTTP benchmark's mix
with its own idempotency key, decided and held. Reported: CPU microseconds of this process
per decision (`time.process_time`, so other work on the machine moves it little; the
PostgreSQL backend's CPU is not in it), the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import load
from bench_http import PG_ADMIN_URL, database, seed
from report import Figure, Result, Table, arguments, command_line, log, run

from tactful.service import create_app
from tactful.service.config import Settings
from tactful.store import open_store


def request(app: Any, key: str, body: bytes) -> Any:
    """One request through the app as uvicorn would hand it over; returns the status."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": load.PATH, "raw_path": load.PATH.encode(), "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {key}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> int:
        await app(scope, receive, send)
        return int(sent[0]["status"])

    return run()


async def rounds(apps: dict[str, Any], key: str, args: argparse.Namespace) -> dict[str, float]:
    rng = random.Random(args.seed)
    weights = [w for w, _ in load.MIX]
    fields = [f for _, f in load.MIX]
    n = 0

    def body() -> bytes:
        nonlocal n
        n += 1
        return (
            f'{{"customer_id":"{load.customer_id(rng.randrange(args.customers))}",'
            f'{rng.choices(fields, weights)[0]},"idempotency_key":"asgi-{n}"}}'
        ).encode()

    for app in apps.values():  # warm-up: imports, statement caches, state cache
        for _ in range(args.warmup):
            assert await request(app, key, body()) == 200
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(args.rounds):
        for name, app in apps.items():
            started = time.process_time()
            for _ in range(args.requests):
                status = await request(app, key, body())
                if status != 200:
                    raise SystemExit(f"{name}: status {status}")
            samples[name].append(1e6 * (time.process_time() - started) / args.requests)
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(kind: str, args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    with database(kind, workdir, args.pg_admin_url) as url:
        store = open_store(url)
        try:
            seed(store, args.customers, args.history, random.Random(args.seed))
            _, key = store.create_key(["decide"], name="bench", now=datetime.now(UTC))
            apps = {
                "fast path": create_app(
                    Settings(database_url=url, hold_ttl_seconds=900), store=store
                ),
                "route": create_app(
                    Settings(database_url=url, hold_ttl_seconds=900, decide_fast_path=False),
                    store=store,
                ),
            }

            async def main() -> dict[str, float]:
                async with (
                    apps["fast path"].router.lifespan_context(apps["fast path"]),
                    apps["route"].router.lifespan_context(apps["route"]),
                ):
                    return await rounds(apps, key, args)

            found = asyncio.run(main())
        finally:
            store.close()
    log(f"[{kind}] " + ", ".join(f"{k}: {v:.0f} µs" for k, v in found.items()))
    return found


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--history", type=float, default=0.3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1_000, help="Requests per round.")
    parser.add_argument("--warmup", type=int, default=1_000, help="Requests per app first.")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--seed", type=int, default=7)
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_asgi.py", argv)
    result = Result("asgi", "Decide through the ASGI app in process: CPU per decision", command)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tactful-bench-") as tmp:
        for kind in [s.strip() for s in args.stores.split(",") if s.strip()]:
            found = measure(kind, args, Path(tmp))
            fast, route = found["fast path"], found["route"]
            saved = 100 * (1 - fast / route)
            result.figures += [
                Figure(f"{kind}: app CPU per decision, fast path", round(fast), "µs",
                       command=command),
                Figure(f"{kind}: app CPU per decision, FastAPI route", round(route), "µs",
                       command=command),
            ]  # fmt: skip
            rows.append([kind, round(fast), round(route), f"{saved:.0f}%"])
    result.tables.append(
        Table(
            f"CPU µs of the process per decision, median of {args.rounds} alternating rounds "
            f"of {args.requests:,} requests; {args.customers:,} customers, "
            f"{args.history:.0%} with history",
            ["store", "fast path", "FastAPI route", "saved"],
            rows,
        )
    )
    result.notes.append(
        "Not in these figures: the HTTP server's parsing and writing (uvicorn with httptools "
        "and uvloop) and, on PostgreSQL, the database backend's CPU; `bench_http.py` "
        "measures those end to end."
    )
    return result


if __name__ == "__main__":
    run(main)
