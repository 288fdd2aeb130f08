"""Replay through the replay kernel: `bench_replay.py` with `bench/frequency.yaml`.

That policy is courtesy's caps, gaps and pressure alone, every rule of a kind the kernel
covers (`tactful/replay/native.py`), so the whole fold runs in machine code; the figure
beside `bench_replay.py`'s (courtesy, through the engine) shows what the kernel changes.
Target (PRODUCT.md): >= 1,000,000 log rows per second per core.

    .venv/bin/python bench/bench_replay_kernel.py --rows 10000000   # the BENCHMARKS.md figure
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from bench_replay import main as replay
from report import Result, run

FREQUENCY = Path(__file__).with_name("frequency.yaml")


def main(argv: Sequence[str]) -> Result:
    res = replay(["--policy", os.path.relpath(FREQUENCY), *argv])
    res.benchmark = "replay_kernel"
    res.title = "Replay through the replay kernel (caps, gaps and pressure only)"
    res.notes = [
        note.replace("by `tactful.engine.decide`", "by the replay kernel, as `decide` would")
        for note in res.notes
    ]
    return res


if __name__ == "__main__":
    run(main)
