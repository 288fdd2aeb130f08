"""Scale-out: the service keeps no state of its own that matters, so two `tactful serve`
processes (one with two workers) on different ports share one PostgreSQL database and
still never let a cap be exceeded while 64 clients race through both of them."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from tests.service.server import Server, create_key

CAP = 3
CAP_POLICY = f"""
name: one-cap
version: "1"
rules:
  - id: email-cap
    kind: cap
    scope: {{channels: [email], purposes: [marketing]}}
    count: {CAP}
    window: 7d
    message: At most {CAP} marketing emails per 7 days.
"""
CUSTOMERS = [f"c{i}" for i in range(12)]
CLIENTS = 64
REQUESTS = 24


def test_two_servers_on_one_postgresql_hold_the_cap(pg_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "cap.yaml"
    policy.write_text(CAP_POLICY)
    key = create_key(pg_url, "decide")
    headers = {"Authorization": f"Bearer {key}"}
    allowed: Counter[str] = Counter()
    cancelled: Counter[str] = Counter()
    answered_by: Counter[tuple[int, str]] = Counter()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    with (
        Server(pg_url, policy=str(policy), log=tmp_path / "a.log") as a,
        Server(pg_url, policy=str(policy), workers=2, log=tmp_path / "b.log") as b,
    ):
        bases = (a.base, b.base)

        def client(n: int) -> None:
            # One connection to each server; the requests alternate between them, so every
            # customer's decisions come from several processes, each with its own state cache.
            conns = [httpx.Client(base_url=base, headers=headers, timeout=30) for base in bases]
            try:
                for i in range(REQUESTS):
                    server = (n + i) % 2
                    cid = CUSTOMERS[(n * 5 + i) % len(CUSTOMERS)]
                    r = conns[server].post(
                        "/v1/decisions",
                        json={"customer_id": cid, "channel": "email", "purpose": "marketing"},
                    )
                    with lock:
                        statuses[r.status_code] += 1
                    if r.status_code != 200:
                        continue
                    verdict = r.json()["verdict"]
                    with lock:
                        answered_by[(server, verdict)] += 1
                        if verdict == "allow":
                            allowed[cid] += 1
                    if verdict != "allow":
                        continue
                    # Early on, some allows are released through the *other* server, which
                    # frees the slot for a later request; the rest are confirmed as sent.
                    other = conns[1 - server]
                    decision = r.json()["decision_id"]
                    if i < REQUESTS // 2 and n % 3 == 0:
                        done = other.post(f"/v1/decisions/{decision}/cancel")
                        with lock:
                            statuses[done.status_code] += 1
                            if done.status_code == 200:
                                cancelled[cid] += 1
                    else:
                        done = other.post(f"/v1/decisions/{decision}/sent")
                        with lock:
                            statuses[done.status_code] += 1
            finally:
                for c in conns:
                    c.close()

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(client, range(CLIENTS)))

        # A slot freed by the very last cancels may still be open: take what is left, one
        # request at a time, until each customer is deferred.
        topped_up = 0
        with httpx.Client(base_url=a.base, headers=headers, timeout=30) as c:
            for cid in CUSTOMERS:
                while True:
                    topped_up += 1
                    r = c.post(
                        "/v1/decisions",
                        json={"customer_id": cid, "channel": "email", "purpose": "marketing"},
                    )
                    assert r.status_code == 200, r.text
                    if r.json()["verdict"] != "allow":
                        break
                    allowed[cid] += 1

    # Every request answered, none with an error (each allow was confirmed or cancelled).
    assert set(statuses) == {200}, statuses
    assert statuses[200] == CLIENTS * REQUESTS + sum(allowed.values())
    # Both servers carried the load and both handed out slots.
    assert answered_by[(0, "allow")] > 0 and answered_by[(1, "allow")] > 0, answered_by
    assert answered_by[(0, "defer")] > 0 and answered_by[(1, "defer")] > 0, answered_by
    # Per customer: what the clients saw never exceeds the cap, and the freed slots were
    # taken again.
    for cid in CUSTOMERS:
        assert allowed[cid] - cancelled[cid] == CAP, (cid, allowed[cid], cancelled[cid])
    assert sum(cancelled.values()) > 0

    # The store agrees: per customer, exactly CAP live contacts and one audit row per answer.
    with psycopg.connect(pg_url) as conn:
        live = dict(
            conn.execute(
                "SELECT customer_id, count(*) FROM contacts WHERE status <> 'cancelled' "
                "GROUP BY customer_id"
            ).fetchall()
        )
        gone = dict(
            conn.execute(
                "SELECT customer_id, count(*) FROM contacts WHERE status = 'cancelled' "
                "GROUP BY customer_id"
            ).fetchall()
        )
        (audited,) = conn.execute("SELECT count(*) FROM decisions").fetchone() or (0,)
    assert live == dict.fromkeys(CUSTOMERS, CAP)
    assert {c: n for c, n in gone.items() if n} == {c: n for c, n in cancelled.items() if n}
    assert audited == CLIENTS * REQUESTS + topped_up
