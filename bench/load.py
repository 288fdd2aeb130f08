"""Closed-loop HTTP load over loopback: N clients, each sending its next request as soon as
the previous answer arrives, for a fixed time. Two generators share one workload:

* `wrk` (Debian's package, C, a Lua script): costs the server the least CPU, so it is
  preferred when installed (`apt-get install -y wrk`);
* a small asyncio HTTP/1.1 client in this file, used when wrk is missing.

Both target 127.0.0.1 only and stop by themselves after `duration` seconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: What senders ask about, with relative weights: (weight, JSON fields after customer_id).
MIX: tuple[tuple[int, str], ...] = (
    (28, '"channel":"email","purpose":"marketing","campaign":"weekly-picks",'
         '"source":"lifecycle","content":{"subject":"Your weekly picks"}'),
    (12, '"channel":"email","purpose":"transactional","source":"orders",'
         '"content":{"subject":"Your receipt"}'),
    (6, '"channel":"email","purpose":"sales","source":"sales-east","offer":"premium-plan",'
        '"content":{"subject":"Following up on your trial"}'),
    (8, '"channel":"sms","purpose":"marketing","campaign":"flash-sale","source":"lifecycle"'),
    (6, '"channel":"sms","purpose":"service","source":"support"'),
    (10, '"channel":"push","purpose":"marketing","campaign":"back-in-stock"'),
    (6, '"channel":"push","purpose":"transactional","source":"orders"'),
    (6, '"channel":"call","purpose":"sales","source":"sales-east","offer":"premium-plan",'
        '"trigger":{"event":"content_downloaded"}'),
    (4, '"channel":"call","purpose":"service","source":"support"'),
    (7, '"channel":"in_app","purpose":"marketing","campaign":"onboarding"'),
    (7, '"channel":"chat","purpose":"service","source":"support",'
        '"content":{"flags":["chat_offer"]}'),
)  # fmt: skip

PATH = "/v1/decisions"


def customer_id(i: int) -> str:
    return f"c{i:05d}"


@dataclass
class LoadResult:
    generator: str
    seconds: float
    requests: int
    #: HTTP status -> count ("transport" for connections that failed or timed out).
    statuses: dict[str, int]
    verdicts: dict[str, int]
    #: Latency percentiles in milliseconds, keyed "p50", "p90", "p99", "p99.9", "max".
    latency_ms: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def errors(self) -> int:
        return self.requests - self.ok

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


# -- wrk -----------------------------------------------------------------------------------

_LUA = r"""
local customers = __CUSTOMERS__
local prefix = "__PREFIX__"
local mix = __MIX__
local total = 0
for _, m in ipairs(mix) do total = total + m[1] end
local threads = {}
local counter = 0
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer __KEY__"}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  math.randomseed(tid * 7919 + __SEED__)
  statuses = {}
  verdicts = {}
end

function request()
  counter = counter + 1
  local r = math.random(total)
  local fields = mix[#mix][2]
  for _, m in ipairs(mix) do
    if r <= m[1] then fields = m[2] break end
    r = r - m[1]
  end
  local body = string.format('{"customer_id":"c%05d",%s,"idempotency_key":"%s-%d-%d"}',
    math.random(customers) - 1, fields, prefix, tid, counter)
  return wrk.format("POST", "__PATH__", headers, body)
end

function response(status, hdrs, body)
  local s = tostring(status)
  statuses[s] = (statuses[s] or 0) + 1
  if status == 200 then
    local v = string.match(body, '"verdict":"(%a+)"') or "?"
    verdicts[v] = (verdicts[v] or 0) + 1
  end
end

function done(summary, latency, requests)
  local st, vd = {}, {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do st[k] = (st[k] or 0) + v end
    for k, v in pairs(t:get("verdicts")) do vd[k] = (vd[k] or 0) + v end
  end
  local function obj(t)
    local parts = {}
    for k, v in pairs(t) do table.insert(parts, string.format('"%s":%d', k, v)) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"duration_us":%d,"requests":%d,"statuses":%s,"verdicts":%s,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.duration, summary.requests, obj(st), obj(vd),
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(customers: int, key: str, prefix: str, seed: int) -> str:
    mix = "{" + ", ".join(f"{{{w}, {_lua_string(f)}}}" for w, f in MIX) + "}"
    return (
        _LUA.replace("__CUSTOMERS__", str(customers))
        .replace("__PREFIX__", prefix)
        .replace("__MIX__", mix)
        .replace("__KEY__", key)
        .replace("__SEED__", str(seed))
        .replace("__PATH__", PATH)
    )


def run_wrk(
    base: str, key: str, *, clients: int, seconds: float, customers: int, prefix: str, seed: int
) -> LoadResult:
    """One closed-loop run of wrk (one thread: it needs far less than a core here)."""
    if not base.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"load goes to loopback only, not {base}")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "decide.lua"
        script.write_text(wrk_script(customers, key, prefix, seed))
        args = [
            "wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
            "-s", str(script), base + PATH,
        ]  # fmt: skip
        out = subprocess.run(
            args, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    data = json.loads(line.removeprefix("WRKJSON "))
    statuses = {str(k): int(v) for k, v in data["statuses"].items()}
    errors = data["errors"]
    transport = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    if transport:
        statuses["transport"] = transport
    return LoadResult(
        generator="wrk",
        seconds=data["duration_us"] / 1e6,
        requests=sum(statuses.values()),
        statuses=statuses,
        verdicts={str(k): int(v) for k, v in data["verdicts"].items()},
        latency_ms={
            "p50": data["p50"] / 1000,
            "p90": data["p90"] / 1000,
            "p99": data["p99"] / 1000,
            "p99.9": data["p999"] / 1000,
            "max": data["max"] / 1000,
        },
    )


# -- asyncio -------------------------------------------------------------------------------

_VERDICT = re.compile(rb'"verdict":"([a-z]+)"')


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def _client(
    host: str,
    port: int,
    key: str,
    deadline: float,
    rng: random.Random,
    customers: int,
    prefix: str,
    latencies: list[float],
    statuses: dict[str, int],
    verdicts: dict[str, int],
) -> None:
    weights = [w for w, _ in MIX]
    fields = [f for _, f in MIX]
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\n"
    )
    reader, writer = await asyncio.open_connection(host, port)
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            body = (
                f'{{"customer_id":"{customer_id(rng.randrange(customers))}",'
                f'{rng.choices(fields, weights)[0]},"idempotency_key":"{prefix}-{n}"}}'
            ).encode()
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            started = time.perf_counter()
            try:
                writer.write(request)
                header = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                length = 0
                for line in header.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                payload = await asyncio.wait_for(reader.readexactly(length), 5)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                statuses["transport"] = statuses.get("transport", 0) + 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(time.perf_counter() - started)
            status = header[9:12].decode()
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                match = _VERDICT.search(payload)
                verdict = match.group(1).decode() if match else "?"
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
    finally:
        writer.close()


async def _run_python(
    host: str, port: int, key: str, clients: int, seconds: float, customers: int, prefix: str,
    seed: int,
) -> LoadResult:  # fmt: skip
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(
            _client(
                host,
                port,
                key,
                deadline,
                random.Random(seed * 1000 + i),
                customers,
                f"{prefix}-{i}",
                latencies,
                statuses,
                verdicts,
            )
            for i in range(clients)
        )
    )
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    return LoadResult(
        generator="python-asyncio",
        seconds=elapsed,
        requests=sum(statuses.values()),
        statuses=statuses,
        verdicts=verdicts,
        latency_ms={
            p: 1000 * _percentile(ordered, q)
            for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100))
        },
    )


def run_python(
    base: str, key: str, *, clients: int, seconds: float, customers: int, prefix: str, seed: int
) -> LoadResult:
    """One closed-loop run of the asyncio client (it shares the cores with the server)."""
    host, _, port = base.removeprefix("http://").partition(":")
    if not host.startswith("127.") and host not in ("localhost", "[::1]"):
        raise ValueError(f"load goes to loopback only, not {base}")
    return asyncio.run(_run_python(host, int(port), key, clients, seconds, customers, prefix, seed))


def run(generator: str, base: str, key: str, **options: Any) -> LoadResult:
    if generator == "wrk":
        return run_wrk(base, key, **options)
    return run_python(base, key, **options)
