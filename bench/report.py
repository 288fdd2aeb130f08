"""What every benchmark script reports: its figures, the command, and the machine.

A benchmark is a script `bench/bench_<name>.py` whose `main(argv)` returns a `Result`;
`emit` prints it as JSON (the last line of stdout) or writes it to `--json PATH`, which is
how `bench/run.py` collects it. Each figure carries the exact command that reproduces it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One number a benchmark reports, with the target it is held against."""

    label: str
    value: float
    unit: str
    #: The target in words (e.g. "≥ 2,000"), if PRODUCT.md sets one.
    target: str | None = None
    met: bool | None = None
    command: str = ""


@dataclass
class Table:
    """Details worth a table in BENCHMARKS.md (latency percentiles, verdict mix, ...)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Result:
    benchmark: str
    title: str
    command: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=lambda: machine())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    """The facts a reader needs to compare figures: cores, CPU, Python, date, commit."""
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        # Other work on the machine skews the figures: the 1-minute load when measured.
        "load": round(os.getloadavg()[0], 2),
    }


def without(argv: Sequence[str], *options: str) -> list[str]:
    """`argv` less `--json` and `options`, each with its value (`--opt V` or `--opt=V`)."""
    drop = {"--json", *options}
    kept: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a.partition("=")[0] in drop:
            skip = "=" not in a
        else:
            kept.append(a)
    return kept


def command_line(script: str, argv: Sequence[str], *leave_out: str) -> str:
    """The command that reproduces a run, as typed from the repository root, less the
    `--json PATH` that `run.py` adds and the options in `leave_out` (with their values)."""
    return shlex.join([".venv/bin/python", f"bench/{script}", *without(argv, *leave_out)])


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark script takes."""
    parser.add_argument(
        "--json", metavar="PATH", help="Write the result as JSON here (else: last stdout line)."
    )


def emit(result: Result, path: str | None) -> None:
    data = json.dumps(result.as_dict(), ensure_ascii=False)
    if path:
        Path(path).write_text(data + "\n")
    else:
        sys.stdout.write(data + "\n")


def run(main: Callable[[Sequence[str]], Result]) -> None:
    """A benchmark script's entry point: `main` on the command line, its result emitted
    (to `--json PATH`, else as the last stdout line)."""
    cli = argparse.ArgumentParser(add_help=False)
    arguments(cli)
    known, _ = cli.parse_known_args()
    emit(main(sys.argv[1:]), known.json)


def log(message: str) -> None:
    """Progress for the person watching (stderr, so stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)
