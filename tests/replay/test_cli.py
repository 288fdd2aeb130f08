"""`tactful replay` and `tactful demo --log` from the command line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tactful.cli import app
from tactful.replay.run import OUTPUTS
from tactful.replay.timeline import VERDICT_CATEGORICAL
from tests.replay.conftest import LogBuilder
from tests.replay.test_engines import REVOKING

runner = CliRunner()


def test_demo_log_then_replay_with_compare(tmp_path: Path) -> None:
    made = runner.invoke(
        app, ["demo", "--log", str(tmp_path / "log"), "--customers", "8", "--seed", "2"]
    )
    assert made.exit_code == 0, made.output
    assert "for 8 customers" in made.output
    log = tmp_path / "log"
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "replay",
            "--contacts",
            str(log / "contacts.parquet"),
            "--events",
            str(log / "events.parquet"),
            "--customers",
            str(log / "customers.parquet"),
            "--policy",
            "courtesy",
            "--compare",
            "us-tcpa",
            "--out",
            str(out),
            "--workers",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"courtesy v1 .* \d", result.output)
    # The time shown is the whole replay's, reading and writing included, and its parts.
    said = " ".join(result.output.split())
    timed = re.search(
        r"in ([\d.]+) s \(([\d,]+) rows/s, local: read ([\d.]+) s, fold ([\d.]+) s, "
        r"write ([\d.]+) s\)",
        said,
    )
    assert timed, said
    total, read, fold, write = (float(timed.group(i)) for i in (1, 3, 4, 5))
    assert abs(total - (read + fold + write)) <= 0.15
    for name in ("verdicts.parquet", "verdicts.csv", "verdicts-compare.parquet", "report.html"):
        assert (out / name).exists()
    verdicts = pl.read_parquet(out / "verdicts.parquet")
    assert verdicts.height == pl.read_parquet(log / "contacts.parquet").height
    assert set(verdicts.get_column("policy")) == {"courtesy"}
    assert set(pl.read_parquet(out / "verdicts-compare.parquet").get_column("policy")) == {
        "us-tcpa"
    }
    csv = pl.read_csv(out / "verdicts.csv")
    assert csv.height == verdicts.height
    # Few-valued text as dictionaries, the reasons as text, and the CSV of the same values.
    schema = pq.read_schema(out / "verdicts.parquet")
    for name in VERDICT_CATEGORICAL | {"policy", "policy_version"}:
        assert pa.types.is_dictionary(schema.field(name).type), name
    assert pa.types.is_large_string(schema.field("reasons").type)
    assert pl.read_csv(out / "verdicts.csv", schema=verdicts.schema).equals(verdicts)


def test_bad_rows_are_listed_and_strict_fails(log: LogBuilder, tmp_path: Path) -> None:
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("a", "not a time", "email", "marketing")
    contacts, events, _ = log.write()
    args = [
        "replay",
        "--contacts",
        str(contacts),
        "--events",
        str(events),
        "--policy",
        "courtesy",
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--no-report",
    ]
    ok = runner.invoke(app, args)
    assert ok.exit_code == 0, ok.output
    assert "Replayed 1 row (2 contact and 0 event rows read)" in ok.output
    assert "1 bad row left out" in ok.output
    assert "row 2, column 'at'" in ok.output
    assert "not a time" in (tmp_path / "out" / "bad-rows.csv").read_text()
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 1
    assert "1 bad row (--strict)" in strict.output
    assert "row 2, column 'at'" in strict.output


def test_a_replay_leaves_no_file_of_an_earlier_one(log: LogBuilder, tmp_path: Path) -> None:
    """Replayed again into one folder without a comparison, bad rows or report: what the
    earlier replay wrote of those is removed once this one's files are written (beside
    the new verdicts they would pass for this replay's), and the command says so. A
    replay that fails leaves the folder as it was."""
    log.contact("a", "2026-03-02T10:00:00Z", "email", "marketing")
    log.contact("a", "not a time", "email", "marketing")
    contacts, events, _ = log.write()
    out = tmp_path / "out"
    every = set(OUTPUTS)  # all a replay with a comparison, bad rows and a report writes
    into = ["--policy", "courtesy", "--out", str(out), "--workers", "1", "--no-progress"]
    first = runner.invoke(
        app,
        ["replay", "--contacts", str(contacts), "--events", str(events), "--compare",
         "us-tcpa", *into],
    )  # fmt: skip
    assert first.exit_code == 0, first.output
    assert {p.name for p in out.iterdir()} == every
    failed = runner.invoke(app, ["replay", "--contacts", str(contacts), *into, "--strict"])
    assert failed.exit_code == 1
    assert {p.name for p in out.iterdir()} == every
    clean = tmp_path / "clean.csv"
    clean.write_text("customer_id,at,channel,purpose\nb,2026-03-02T10:00:00Z,sms,service\n")
    again = runner.invoke(app, ["replay", "--contacts", str(clean), *into, "--no-report"])
    assert again.exit_code == 0, again.output
    assert {p.name for p in out.iterdir()} == {"verdicts.csv", "verdicts.parquet"}
    said = " ".join(again.output.split())
    for name in every - {"verdicts.csv", "verdicts.parquet"}:
        assert f"removed, from an earlier replay into {out}: {name}" in said, said
    assert pl.read_parquet(out / "verdicts.parquet").get_column("customer_id").to_list() == ["b"]


def test_mapping_and_missing_columns(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("user,at,channel,purpose\na,2026-03-02T10:00:00Z,email,marketing\n")
    args = [
        "replay",
        "--contacts",
        str(contacts),
        "--policy",
        "courtesy",
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
        "--no-report",
    ]
    missing = runner.invoke(app, args)
    assert missing.exit_code == 1
    assert "missing column 'customer_id'" in missing.output
    mapped = runner.invoke(app, [*args, "--map", "customer_id=user"])
    assert mapped.exit_code == 0, mapped.output


def test_an_unknown_engine_or_policy(tmp_path: Path) -> None:
    contacts = tmp_path / "c.csv"
    contacts.write_text("customer_id,at,channel,purpose\n")
    base = ["replay", "--contacts", str(contacts), "--out", str(tmp_path / "o")]
    assert runner.invoke(app, [*base, "--policy", "courtesy", "--engine", "dask"]).exit_code == 2
    assert runner.invoke(app, [*base, "--policy", "nope"]).exit_code == 1


def test_the_summary_says_how_each_policy_was_folded(tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert runner.invoke(app, ["demo", "--log", str(log), "--customers", "4"]).exit_code == 0
    frequency = Path(__file__).parents[2] / "bench" / "frequency.yaml"
    args = ["replay", "--contacts", str(log / "contacts.parquet")]
    args += ["--events", str(log / "events.parquet"), "--policy", str(frequency)]
    revoking = tmp_path / "revoking.yaml"
    revoking.write_text(REVOKING)
    args += ["--compare", str(revoking), "--out", str(tmp_path / "out"), "--workers", "1"]
    result = runner.invoke(app, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "frequency v1: folded by the replay kernel" in result.output
    said = " ".join(result.output.split())  # as Rich wraps it
    assert (
        "revoking v1: folded by the engine; the replay kernel does not cover more than 32 "
        "revocation rules" in said
    )


def test_a_replay_that_stops_leaves_no_verdict_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSV is written as chunks are folded, under a `.partial` name: a replay that
    stops part way removes it, and a finished one holds every chunk's verdicts."""
    from tactful.policy.document import Policy
    from tactful.replay import local
    from tactful.replay.run import replay
    from tactful.replay.synthetic import write_log

    files = write_log(tmp_path / "log", customers=30, seed=4)
    fold, calls = local.fold_frame, []

    def failing(*args: Any, **kwargs: Any) -> pl.DataFrame:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a chunk fails")
        return fold(*args, **kwargs)

    monkeypatch.setattr(local, "CHUNK_ROWS", 400)
    monkeypatch.setattr(local, "THREAD_CHUNK_ROWS", 400)
    monkeypatch.setattr(local, "fold_frame", failing)
    out = tmp_path / "out"
    courtesy = Policy.load("courtesy")
    with pytest.raises(RuntimeError, match="a chunk fails"):
        replay(files.contacts, files.events, courtesy, out=out, workers=1, report=False)
    assert list(out.iterdir()) == []
    monkeypatch.setattr(local, "fold_frame", fold)
    done = replay(files.contacts, files.events, courtesy, out=out, workers=1, report=False)
    assert sorted(p.name for p in out.iterdir()) == ["verdicts.csv", "verdicts.parquet"]
    written = pl.read_parquet(out / "verdicts.parquet")
    assert written.height == done.verdicts[0].height > 100
    assert pl.read_csv(out / "verdicts.csv", schema=written.schema).equals(written)


def test_the_cli_starts_without_loading_the_service() -> None:
    """`tactful replay` (or `--help`, `policy check`) needs neither FastAPI nor the
    routes: importing them took ~1.2 s of every command's start."""
    import subprocess
    import sys

    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, tactful.cli; print('fastapi' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"
    assert runner.invoke(app, ["--help"]).exit_code == 0


def test_verdicts_that_cannot_be_written_leave_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Parquet fails (a full disk, say) after the CSV was written: neither is left,
    under its own name or a `.partial` one."""
    from tactful.policy.document import Policy
    from tactful.replay.run import replay
    from tactful.replay.synthetic import write_log

    files = write_log(tmp_path / "log", customers=5, seed=4)

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        replay(files.contacts, files.events, Policy.load("courtesy"), out=out, report=False)
    assert list(out.iterdir()) == []


def test_no_report_writes_the_verdicts_alone(tmp_path: Path) -> None:
    from tactful.replay.synthetic import write_log

    files = write_log(tmp_path / "log", customers=3, seed=1)
    out = tmp_path / "out"
    args = ["replay", "--contacts", str(files.contacts), "--events", str(files.events),
            "--policy", "courtesy", "--out", str(out), "--no-report"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["verdicts.csv", "verdicts.parquet"]
    assert "report:" not in result.output


def test_a_replay_keeps_the_memory_it_frees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tactful replay` sets the allocator to keep freed memory (`keep_freed_memory`)
    before it reads the logs."""
    from tactful.replay import local
    from tactful.replay.synthetic import write_log

    files = write_log(tmp_path / "log", customers=2, seed=1)
    calls: list[str] = []
    monkeypatch.setattr(local, "keep_freed_memory", lambda: calls.append("kept") or True)
    monkeypatch.setattr(local, "progress_bar", _recorded(local.progress_bar, calls, "bar"))
    args = ["replay", "--contacts", str(files.contacts), "--events", str(files.events),
            "--policy", "courtesy", "--out", str(tmp_path / "out"), "--no-report"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert calls == ["kept", "bar"]


def _recorded(function: Any, calls: list[str], name: str) -> Any:
    def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return function(*args, **kwargs)

    return recorded


def test_a_device_that_fills_while_the_csv_is_written_leaves_no_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to the verdicts' CSV fail part way, as chunks come (`DirectFile`): the
    error is the one raised, and no file is left, though bytes were still waiting to be
    written (they are not tried again)."""
    import errno

    from tactful.policy.document import Policy
    from tactful.replay import direct, local
    from tactful.replay.run import replay
    from tactful.replay.synthetic import write_log

    files = write_log(tmp_path / "log", customers=30, seed=4)
    real_write, calls = direct.os.write, []

    def filling(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) > 1:  # the first block written, the second refused
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(local, "THREAD_CHUNK_ROWS", 400)
    monkeypatch.setattr(direct, "BUFFER_BYTES", direct.ALIGN)  # a block at a time
    monkeypatch.setattr(direct.os, "write", filling)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        replay(files.contacts, files.events, Policy.load("courtesy"), out=out, workers=1,
               report=False)  # fmt: skip
    assert len(calls) == 2
    assert list(out.iterdir()) == []
