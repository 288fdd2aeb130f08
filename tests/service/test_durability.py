"""Over real HTTP against a real server process, on SQLite and PostgreSQL: the cap holds
under 64 concurrent clients, and nothing acknowledged is lost to `kill -9`."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.service.server import Server, create_key

CAP_POLICY = """
name: one-cap
version: "1"
rules:
  - id: email-cap
    kind: cap
    scope: {channels: [email], purposes: [marketing]}
    count: 3
    window: 7d
    message: At most 3 marketing emails per 7 days.
"""


def test_64_clients_never_exceed_a_cap(store_url: str, tmp_path: Path) -> None:
    policy = tmp_path / "cap.yaml"
    policy.write_text(CAP_POLICY)
    key = create_key(store_url, "decide", "read")
    headers = {"Authorization": f"Bearer {key}"}
    with Server(store_url, policy=str(policy), log=tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as c:
            # The hot customer has two emails already: one slot left.
            for _ in range(2):
                d = c.post(
                    "/v1/decisions",
                    json={"customer_id": "hot", "channel": "email", "purpose": "marketing"},
                ).json()
                assert c.post(f"/v1/decisions/{d['decision_id']}/sent").status_code == 200

        verdicts: Counter[tuple[str, str]] = Counter()
        lock = threading.Lock()

        def client(n: int) -> None:
            with httpx.Client(base_url=server.base, headers=headers, timeout=30) as c:
                for i in range(40):
                    cid = "hot" if i % 2 == 0 else f"c{(n * 7 + i) % 50}"
                    r = c.post(
                        "/v1/decisions",
                        json={"customer_id": cid, "channel": "email", "purpose": "marketing"},
                    )
                    assert r.status_code == 200, r.text
                    with lock:
                        verdicts[("hot" if cid == "hot" else "other", r.json()["verdict"])] += 1

        with ThreadPoolExecutor(64) as pool:
            list(pool.map(client, range(64)))

        assert sum(verdicts.values()) == 64 * 40
        assert verdicts[("hot", "allow")] == 1, verdicts
        assert verdicts[("other", "allow")] == 50 * 3, verdicts
        # The ledger agrees: no customer has more than 3 live contacts.
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as c:
            for cid in ["hot", *(f"c{i}" for i in range(50))]:
                contacts = c.get(f"/v1/customers/{cid}").json()["contacts"]
                assert len([x for x in contacts if x["status"] != "cancelled"]) == 3, cid


def test_kill_9_loses_no_acknowledged_opt_out_or_confirmed_contact(
    store_url: str, tmp_path: Path
) -> None:
    key = create_key(store_url, "admin")
    headers = {"Authorization": f"Bearer {key}"}
    acked_optouts: list[str] = []
    confirmed: list[tuple[str, str]] = []
    stop = threading.Event()
    server = Server(store_url, log=tmp_path / "server.log").start()

    def opt_outs(n: int) -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=5) as c:
            i = 0
            while not stop.is_set():
                cid = f"o{n}-{i}"
                try:
                    r = c.post(
                        "/v1/events",
                        json={
                            "customer_id": cid,
                            "event": "opted_out",
                            "timestamp": "2026-11-20T12:00:00Z",
                            "messageId": f"m-{cid}",
                        },
                    )
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked_optouts.append(cid)
                i += 1

    def sends(n: int) -> None:
        with httpx.Client(base_url=server.base, headers=headers, timeout=5) as c:
            i = 0
            while not stop.is_set():
                cid = f"s{n}-{i}"
                try:
                    d = c.post(
                        "/v1/decisions",
                        json={"customer_id": cid, "channel": "push", "purpose": "service"},
                    ).json()
                    r = c.post(f"/v1/decisions/{d['decision_id']}/sent")
                except (httpx.TransportError, KeyError, ValueError):
                    return
                if r.status_code == 200:
                    confirmed.append((cid, d["decision_id"]))
                i += 1

    threads = [threading.Thread(target=f, args=(n,)) for n in range(4) for f in (opt_outs, sends)]
    for t in threads:
        t.start()
    # Kill mid-stream, once both kinds of write have been acknowledged a few times (not
    # after a fixed time: a slow machine must not leave nothing to check).
    deadline = time.monotonic() + 60
    while (len(acked_optouts) < 20 or len(confirmed) < 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    server.kill()
    stop.set()
    for t in threads:
        t.join(10)
    assert acked_optouts and confirmed

    with (
        Server(store_url, log=tmp_path / "server2.log") as again,
        httpx.Client(base_url=again.base, headers=headers, timeout=30) as c,
    ):
        for cid in acked_optouts:
            body = c.get(f"/v1/customers/{cid}").json()
            assert body["opt_outs"], cid
            d = c.post(
                "/v1/decisions",
                json={"customer_id": cid, "channel": "email", "purpose": "marketing"},
            ).json()
            assert d["verdict"] == "deny", cid
        for cid, decision_id in confirmed:
            contacts = c.get(f"/v1/customers/{cid}").json()["contacts"]
            assert [(x["contact_id"], x["status"]) for x in contacts] == [(decision_id, "sent")]
        # The audit log is consistent: every allow has its contact, every contact its decision.
        entries = c.get("/v1/audit", params={"limit": 10000}).json()["entries"]
        allows = {e["decision_id"] for e in entries if e["verdict"] == "allow"}
        assert {d for _, d in confirmed} <= allows
        for e in entries:
            if e["verdict"] == "allow":
                assert e["status"] in ("held", "sent", "cancelled", "expired"), e
