"""Replay throughput: log rows per second through the local engine, and peak memory.

Writes a synthetic quarter (`tactful demo --log`, in its own process, not timed) of at
least `--rows` rows and puts each file's rows in time order, as systems export them (not
timed either; `--order customer` keeps the generator's order, customer by customer,
which is kinder to the sort; `--format csv` writes the files as CSV). Then times what
`tactful replay` does with it, end to end: reading and validating the files and sorting
them into per-customer timelines, folding every customer through the courtesy policy in
`--workers` workers (threads, in the replay kernel, `tactful/replay/native.py`;
processes for a policy it does not cover) while the verdicts' CSV is written as each
chunk comes in, and writing their Parquet (the HTML report is left out). Peak memory
is the largest sum of resident memory over this process and any worker processes,
sampled every 100 ms.
Target (PRODUCT.md): >= 1,000,000 log rows per second per core.

    .venv/bin/python bench/bench_replay.py                    # 200,000 rows (~30 s)
    .venv/bin/python bench/bench_replay.py --rows 10000000 --repeat 3   # BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from report import Figure, Result, Table, arguments, command_line, log, run, without

from tactful.policy.document import Policy
from tactful.replay.io import ISO_UTC, load_log
from tactful.replay.local import keep_freed_memory
from tactful.replay.run import ReplayResult, VerdictFiles, run_engine, write_results

TARGET_PER_CORE = 1_000_000.0


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _cpu_seconds() -> float:
    """CPU-seconds (user and system) of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class PeakMemory:
    """Largest total RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        root = os.getpid()
        while not self._stop.is_set():
            pids, todo = [], [root]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in pids))
            self._stop.wait(interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _median_of(runs: int, argv: Sequence[str], command: str) -> Result:
    """`runs` runs of this script, each in its own process (the log written once, by the
    first), and the median run by rows/s per core, with every run's figures noted."""
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tactful-replay-runs-") as tmp:
        once = without(argv, "--repeat")
        if not any(a.partition("=")[0] == "--log-dir" for a in once):
            once += ["--log-dir", str(Path(tmp) / "log")]
        for run_no in range(runs):
            out = Path(tmp) / f"run{run_no}.json"
            log(f"run {run_no + 1} of {runs}:")
            script = Path(__file__).with_name("bench_replay.py")
            subprocess.run([sys.executable, str(script), *once, "--json", str(out)], check=True)
            results.append(json.loads(out.read_text()))
    per_core = [r["figures"][0]["value"] for r in results]
    middle = sorted(range(runs), key=lambda i: per_core[i])[runs // 2]
    chosen = results[middle]
    res = Result(
        chosen["benchmark"],
        chosen["title"],
        command,
        [Figure(**{**f, "command": command}) for f in chosen["figures"]],
        [Table(**t) for t in chosen["tables"]],
        chosen["notes"],
        chosen["machine"],
    )
    table = chosen["tables"][0]
    total = table["columns"].index("total s")
    totals = ", ".join(
        f"{r['tables'][0]['rows'][0][total]} s ({p:,.0f})"
        for r, p in zip(results, per_core, strict=True)
    )
    res.notes.append(
        f"{runs} runs, each in a fresh process, total time (rows/s per core): {totals}; "
        f"the median one (run {middle + 1}) is shown. Runs on this machine spread by 10-30%."
    )
    return res


def main(argv: Sequence[str]) -> Result:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rows",
        type=int,
        default=200_000,
        help="Log rows to replay, at least (default 200,000; the "
        "BENCHMARKS.md figure uses 10,000,000).",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 2,
        help="Worker processes (default: one per core).",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", default="courtesy")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="Keep the synthetic log here and reuse it when present.",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Runs, each in a fresh process (as `tactful replay` runs); the median one is "
        "reported, all are listed (the BENCHMARKS.md figure uses 3).",
    )
    parser.add_argument(
        "--format",
        choices=("parquet", "csv"),
        default="parquet",
        help="The log's files as Parquet (default) or CSV, times as ISO 8601 text.",
    )
    parser.add_argument(
        "--order",
        choices=("time", "customer"),
        default="time",
        help="Rows of each file in time order, as systems export them (default), or "
        "customer by customer, as `tactful demo --log` writes them.",
    )
    arguments(parser)
    args = parser.parse_args(argv)
    command = command_line("bench_replay.py", argv, "--log-dir")
    if args.repeat > 1:
        return _median_of(args.repeat, argv, command)
    policy = Policy.load(args.policy)
    with tempfile.TemporaryDirectory(prefix="tactful-replay-") as tmp:
        folder = args.log_dir or Path(tmp) / "log"
        if not (folder / "contacts.parquet").exists():
            log(f"writing a synthetic log of >= {args.rows:,} rows to {folder} ...")
            started = time.monotonic()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tactful.cli",
                    "demo",
                    "--log",
                    str(folder),
                    "--rows",
                    str(args.rows),
                    "--seed",
                    str(args.seed),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            log(f"  written in {time.monotonic() - started:.1f} s")
        # The files replayed: the generator's, or a copy in time order or as CSV (made
        # once, not timed).
        suffix = ("-by-time" if args.order == "time" else "") + f".{args.format}"
        files = {n: folder / f"{n}{suffix}" for n in ("contacts", "events", "customers")}
        if args.format == "parquet":
            files["customers"] = folder / "customers.parquet"
        for name, path in files.items():
            if not path.exists():
                log(f"  {path.name}: {name}, {args.order} order, {args.format} (not timed) ...")
                rows_of = pl.read_parquet(folder / f"{name}.parquet")
                if args.order == "time" and name != "customers":
                    rows_of = rows_of.sort("at", maintain_order=True)
                if args.format == "csv":
                    rows_of.write_csv(path, datetime_format=ISO_UTC)
                else:
                    rows_of.write_parquet(path)
                del rows_of
        log(f"replaying with {args.workers} workers ...")
        keep_freed_memory()  # as `tactful replay` does
        with PeakMemory() as memory:
            whole = _cpu_seconds()
            t0 = time.perf_counter()
            loaded = load_log(files["contacts"], files["events"], customers=files["customers"])
            t1 = time.perf_counter()
            fold_cpu = _cpu_seconds()
            # As `tactful replay --out` does: the CSV written while the fold goes on.
            files = VerdictFiles(Path(tmp) / "out", [policy])
            verdicts = run_engine(loaded, [policy], workers=args.workers, files=files)
            t2 = time.perf_counter()
            fold_cpu = _cpu_seconds() - fold_cpu
            result = ReplayResult(loaded, [policy], verdicts, t2 - t1, "local")
            write_results(result, Path(tmp) / "out", report=False, files=files)
            t3 = time.perf_counter()
            whole = _cpu_seconds() - whole
    rows = result.rows
    total = t3 - t0
    counts = result.counts()
    contacts = sum(counts.values())
    per_core = rows / total / args.workers
    fold_per_core = rows / (t2 - t1) / args.workers
    # CPU seconds the fold used (this process's threads and any worker processes), with
    # the CSV written alongside: rows per CPU-second is the per-core rate that does not
    # depend on what else the machine was running.
    per_cpu_second = rows / fold_cpu if fold_cpu > 0 else 0.0
    per_cpu_whole = rows / whole if whole > 0 else 0.0
    load = os.getloadavg()[0]
    log(
        f"{rows:,} rows ({contacts:,} contacts, {rows - contacts:,} events) for "
        f"{loaded.customers:,} customers in {total:.1f} s (read+sort {t1 - t0:.1f} s, fold "
        f"and CSV {t2 - t1:.1f} s, Parquet {t3 - t2:.1f} s): {rows / total:,.0f} rows/s, "
        f"{per_core:,.0f} per core; fold's and CSV's CPU {fold_cpu:.1f} s: {per_cpu_second:,.0f} "
        f"rows per CPU-second; the whole replay's CPU {whole:.1f} s: {per_cpu_whole:,.0f} rows "
        f"per CPU-second; peak RSS {memory.peak_kib / 1024:,.0f} MiB; load {load:.1f}"
    )
    res = Result("replay", "Replay through the local engine", command)
    res.figures += [
        Figure(
            f"replay {rows:,} rows: rows/s per core",
            round(per_core, 1),
            "rows/s/core",
            "≥ 1,000,000",
            per_core >= TARGET_PER_CORE,
            command,
        ),
        Figure(
            f"replay {rows:,} rows: rows per CPU-second of the fold and CSV",
            round(per_cpu_second, 1),
            "rows/CPU-s",
            "≥ 1,000,000",
            per_cpu_second >= TARGET_PER_CORE,
            command,
        ),
        Figure(
            f"replay {rows:,} rows: rows per CPU-second of the whole replay",
            round(per_cpu_whole, 1),
            "rows/CPU-s",
            "≥ 1,000,000",
            per_cpu_whole >= TARGET_PER_CORE,
            command,
        ),
        Figure(
            f"replay {rows:,} rows: peak memory",
            round(memory.peak_kib / 1024, 1),
            "MiB",
            None,
            None,
            command,
        ),
    ]
    res.tables.append(
        Table(
            f"{rows:,} synthetic log rows (seed {args.seed}), {args.format}, {args.order} order, "
            f"{args.workers} workers, policy {policy.name} v{policy.version}",
            [
                "rows",
                "contacts",
                "events",
                "customers",
                "read + sort s",
                "fold + CSV s",
                "Parquet s",
                "total s",
                "rows/s",
                "rows/s per core",
                "fold + CSV rows/s per core",
                "rows per CPU-s of fold + CSV",
                "rows per CPU-s, whole",
                "peak RSS MiB",
                "allow",
                "defer",
                "deny",
            ],
            [
                [
                    rows,
                    contacts,
                    rows - contacts,
                    loaded.customers,
                    round(t1 - t0, 1),
                    round(t2 - t1, 1),
                    round(t3 - t2, 1),
                    round(total, 1),
                    round(rows / total),
                    round(per_core),
                    round(fold_per_core),
                    round(per_cpu_second),
                    round(per_cpu_whole),
                    round(memory.peak_kib / 1024),
                    counts["allow"],
                    counts["defer"],
                    counts["deny"],
                ]
            ],
        )
    )
    share = contacts / rows if rows else 0.0
    res.notes += [
        f"Row mix: {share:.0%} contacts (each needs an engine decision), {1 - share:.0%} events "
        "(folded into the customer's state), as `tactful demo --log` generates them; "
        + (
            "each file's rows then put in time order, as systems export them (so each "
            "customer's rows are scattered through the file), `--order customer` for "
            "the generator's order."
            if args.order == "time"
            else "in the generator's order, customer by customer (`--order time`: in "
            "time order, as systems export them)."
        ),
        "Every contact row is decided against the customer's simulated state, no rows "
        "skipped, no verdict reused across customers: by the replay kernel "
        "(`tactful/replay/kernel.py`) where the policy's rules are all of kinds it covers "
        "(`tactful replay` prints which), its verdicts equal to `tactful.engine.decide`'s "
        "(`tests/replay/test_native.py`); customers it hands back, and other policies, by "
        "the engine itself.",
        f"Load average {load:.1f} at the end of the run on {os.cpu_count()} cores: other work "
        "on the machine lowers rows/s; rows per CPU-second of the fold and CSV does not depend "
        "on it.",
        "Rows per CPU-second of the whole replay: the rows over every CPU-second the replay "
        "took, reading and checking the files, the fold, the CSV and the Parquet (this "
        "process's threads and any worker processes, user and system). Rows/s per core "
        "reaches it only where every core is busy throughout; it tells how much of a "
        "shortfall is work, and how much is cores left waiting.",
    ]
    return res


def with_policy(policy: str, benchmark: str, title: str) -> Callable[[Sequence[str]], Result]:
    """This benchmark with `policy` (a pack's name, or a file beside this one), under its
    own name and title (`bench_replay_kernel.py`, `bench_replay_tcpa.py`,
    `bench_replay_packs.py`)."""
    beside = Path(__file__).with_name(policy)
    if beside.is_file():
        policy = os.path.relpath(beside)

    def bench(argv: Sequence[str]) -> Result:
        res = main(["--policy", policy, *argv])
        res.benchmark = benchmark
        res.title = title
        return res

    return bench


if __name__ == "__main__":
    run(main)
