"""Replay through every regulatory pack at once: `bench_replay.py` with
`bench/regulatory.yaml`.

That policy composes the packs that ship (us-tcpa, us-fl-ftsa, us-md, us-ok, us-reg-f,
fr-demarchage, au-telemarketing, ca-crtc): 20 rules of calling hours, the law's holidays,
do-not-call lists, revocations by reply, `frequency` (rolling windows, calendar days,
consent windows) and `cooldown`, each limited to the regions it binds. Since the
twentieth session the replay kernel folds all of them (before, the engine did: ~110,000
rows/s per core on 1M rows). The synthetic log's contacts carry no tags, so every
contact counts against every key; its customers are spread over the US, France,
Australia, Canada and elsewhere, and it has no collections calls, so Reg F's rules are
carried through every contact without firing.
Target (PRODUCT.md): >= 1,000,000 log rows per second per core.

    .venv/bin/python bench/bench_replay_packs.py --rows 10000000   # the BENCHMARKS.md figure
"""

from __future__ import annotations

from bench_replay import with_policy
from report import run

main = with_policy(
    "regulatory.yaml",
    "replay_packs",
    "Replay through every regulatory pack (regulatory.yaml)",
)

if __name__ == "__main__":
    run(main)
