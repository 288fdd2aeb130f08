"""Replay of a pacing-only policy: `bench_replay.py` with `bench/frequency.yaml`.

That policy is courtesy's caps, gaps and pressure alone: no customer is ever handed to
the engine, and the events' properties are not read (nor sent to the workers). Beside
`bench_replay.py`'s figure (courtesy), it shows what the rest of courtesy costs.
Target (PRODUCT.md): >= 1,000,000 log rows per second per core.

    .venv/bin/python bench/bench_replay_kernel.py --rows 10000000   # the BENCHMARKS.md figure
"""

from __future__ import annotations

from bench_replay import with_policy
from report import run

main = with_policy(
    "frequency.yaml",
    "replay_kernel",
    "Replay of caps, gaps and pressure alone (frequency.yaml)",
)

if __name__ == "__main__":
    run(main)
