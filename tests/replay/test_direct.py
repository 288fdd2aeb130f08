"""Files written past the page cache (`tactful.replay.direct`) hold exactly the bytes
written, however they were cut, whether the system took `O_DIRECT` or not."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tactful.replay import direct
from tactful.replay.direct import ALIGN, DirectFile


def _takes_o_direct(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o666))
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    return True


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pieces=st.lists(st.binary(min_size=0, max_size=3 * ALIGN + 7), max_size=12),
    blocks=st.integers(1, 3),
)
def test_the_file_holds_the_bytes_written_however_cut(
    tmp_path: Path, pieces: list[bytes], blocks: int
) -> None:
    path = tmp_path / "out.bin"
    with DirectFile(path, buffer_bytes=blocks * ALIGN) as out:
        for piece in pieces:
            assert out.write(piece) == len(piece)
    assert path.read_bytes() == b"".join(pieces)


def test_a_file_system_that_takes_o_direct_is_written_past_the_cache(tmp_path: Path) -> None:
    with DirectFile(tmp_path / "out.bin") as out:
        assert out.direct == _takes_o_direct(tmp_path)
        out.write(b"x" * (2 * ALIGN + 1))
        if out.direct:
            assert fcntl.fcntl(out._fd, fcntl.F_GETFL) & os.O_DIRECT


def test_where_o_direct_is_refused_the_file_is_written_the_usual_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse_direct(path: Path, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode)

    monkeypatch.setattr(direct.os, "open", refuse_direct)
    data = bytes(range(256)) * 100
    with DirectFile(tmp_path / "out.bin", buffer_bytes=ALIGN) as out:
        out.write(data)
        assert not out.direct
    assert (tmp_path / "out.bin").read_bytes() == data


def test_other_errors_on_opening_are_raised(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        DirectFile(tmp_path / "missing" / "out.bin")
    with pytest.raises(ValueError, match="multiple of 4096"):
        DirectFile(tmp_path / "out.bin", buffer_bytes=1000)


def test_a_short_write_that_leaves_the_file_unaligned_goes_on_the_usual_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device may take fewer bytes than asked; the rest must still land, in order."""
    real_write = os.write
    calls = []

    def short_first(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) > 1 or len(data) < 2 * ALIGN:
            return real_write(fd, data)
        # Takes a block and 100 bytes more, as a device that stopped mid-block.
        done = real_write(fd, data[:ALIGN])
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        done += real_write(fd, data[ALIGN : ALIGN + 100])
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)
        return done

    monkeypatch.setattr(direct.os, "write", short_first)
    data = os.urandom(5 * ALIGN + 123)
    with DirectFile(tmp_path / "out.bin", buffer_bytes=2 * ALIGN) as out:
        out.write(data)
        assert not out.direct
    assert (tmp_path / "out.bin").read_bytes() == data
    assert len(calls) > 2


def test_closed_twice_is_closed_and_a_write_after_is_refused(tmp_path: Path) -> None:
    out = DirectFile(tmp_path / "out.bin")
    out.write(b"abc")
    out.close()
    out.close()
    with pytest.raises(ValueError, match="closed"):
        out.write(b"d")
    assert (tmp_path / "out.bin").read_bytes() == b"abc"


def test_polars_writes_csv_and_parquet_into_it_as_into_a_file(tmp_path: Path) -> None:
    frame = pl.DataFrame({"n": range(50_000), "text": [f"row {i} é" for i in range(50_000)]})
    frame.write_csv(tmp_path / "plain.csv")
    with DirectFile(tmp_path / "direct.csv", buffer_bytes=ALIGN) as out:
        frame.write_csv(out)
    assert (tmp_path / "direct.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    with DirectFile(tmp_path / "direct.parquet") as out:
        frame.write_parquet(out)
    assert pl.read_parquet(tmp_path / "direct.parquet").equals(frame)


def test_a_device_that_refuses_the_blocks_is_written_the_usual_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`O_DIRECT` taken at open, but the writes refused (a device of larger blocks than
    4 KiB): the same bytes go the usual way."""
    real_write = os.write
    refused = []

    def large_blocks(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct.os, "write", large_blocks)
    data = os.urandom(3 * ALIGN + 5)
    with DirectFile(tmp_path / "out.bin", buffer_bytes=ALIGN) as out:
        out.write(data)
        assert not out.direct or not _takes_o_direct(tmp_path)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert len(refused) == (1 if _takes_o_direct(tmp_path) else 0)
