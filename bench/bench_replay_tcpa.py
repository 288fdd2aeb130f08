"""Replay of a regulatory pack: `bench_replay.py` with `us-tcpa`.

The US TCPA pack: a calling window and a company do-not-call list limited to customers
who may be in the US, and consent revoked by a reply that says STOP. Since the nineteenth
session the replay kernel folds it (before, the engine did, ~90,000 rows/s per core); the
synthetic log's customers are two in five in the US, and it has no replies, so the
figure is the cost of carrying the pack's rules through every contact.
Target (PRODUCT.md): >= 1,000,000 log rows per second per core.

    .venv/bin/python bench/bench_replay_tcpa.py --rows 10000000   # the BENCHMARKS.md figure
"""

from __future__ import annotations

from bench_replay import with_policy
from report import run

main = with_policy("us-tcpa", "replay_tcpa", "Replay of the US TCPA pack (us-tcpa)")

if __name__ == "__main__":
    run(main)
