"""Where a profiled process spent its time, by layer, from a py-spy speedscope file.

`bench_http.py --profile DIR` records the server with py-spy while it measures, and puts
this summary in its result, so BENCHMARKS.md shows the profile next to the figures. Each
sample goes to the layer of the innermost frame (self time): a C call made from a Python
line counts where that line is (an SQLite commit counts as the store).

    .venv/bin/python bench/profile_summary.py FILE.speedscope.json   # print the tables
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

#: (layer, path fragments of the innermost frame's file); the first match wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP server (uvicorn, httptools)", ("uvicorn/", "httptools")),
    ("web framework (Starlette, FastAPI, anyio)", ("starlette/", "fastapi/", "anyio/")),
    ("models and validation (pydantic)", ("pydantic/", "pydantic_core/")),
    ("service (routes, fast path, runtime, metrics)", ("tactful/service/", "prometheus_client")),
    ("store (SQL, driver, commit)", ("tactful/store/", "sqlite3/", "psycopg", "sqlalchemy/")),
    ("engine, rules, state", ("tactful/engine", "tactful/rules/", "tactful/state", "tactful/")),
    ("JSON (stdlib)", ("/json/",)),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop/")),
)
OTHER = "other (interpreter, gc, threading, ...)"


def layer(file: str) -> str:
    for name, fragments in LAYERS:
        if any(f in file for f in fragments):
            return name
    return OTHER


def _short(frame: dict[str, Any]) -> str:
    file = str(frame.get("file", ""))
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        file = file.split(cut)[-1]
    return f"{frame['name']} ({file})"


def summarise(
    paths: list[Path], top: int = 12, floor: float = 0.5
) -> tuple[list[list[Any]], list[list[Any]], float]:
    """(share by layer, top tactful functions by inclusive share, seconds sampled) over the
    busiest thread of each file (a server's workers) that sampled at least `floor` s."""
    by_layer: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0.0
    for path in paths:
        data = json.loads(path.read_text())
        frames = data["shared"]["frames"]
        profiles = [p for p in data["profiles"] if p.get("weights")]
        if not profiles:
            continue
        busiest = max(profiles, key=lambda p: sum(p["weights"]))
        if sum(busiest["weights"]) < floor:
            continue  # the supervisor of several workers, which only waits
        total += sum(busiest["weights"])
        for stack, weight in zip(busiest["samples"], busiest["weights"], strict=True):
            if not stack:
                continue
            by_layer[layer(str(frames[stack[-1]].get("file", "")))] += weight
            for name in {_short(frames[f]) for f in stack if _ours(frames[f])}:
                inclusive[name] += weight
    share = 100 / (total or 1.0)
    layers = [[name, round(w * share, 1)] for name, w in by_layer.most_common()]
    functions = [[name, round(w * share, 1)] for name, w in inclusive.most_common(top)]
    return layers, functions, total


def _ours(frame: dict[str, Any]) -> bool:
    file = str(frame.get("file", ""))
    return "tactful/" in file and "tactful/cli.py" not in file


if __name__ == "__main__":
    layers, functions, seconds = summarise([Path(a) for a in sys.argv[1:]])
    print(f"{seconds:.1f} s sampled")
    for row in [*layers, ["--", ""], *functions]:
        print(f"  {row[1]!s:>6}  {row[0]}")
