"""Large output files written past the page cache (`O_DIRECT`), where the system allows it.

A replay writes hundreds of megabytes of verdicts. Written the usual way, every 4 KiB page
of them is first taken into the kernel's page cache, charged and copied, then written
back by the kernel's own threads: on the 2-core machines we measure on, 680 MB cost
1.8 CPU-seconds of the system's time that way, against 0.15 written straight to the
device from one reused buffer (`bench/changes.md`, round 16), CPU that the fold running
beside the writes needs.

`DirectFile` is a file to `write` bytes into (what Polars' `write_csv` and
`write_parquet` take): the bytes gather in a page-aligned buffer that goes to the file in
whole blocks, and what is left at `close` (less than a block) is written the usual way.
Where `O_DIRECT` is refused (tmpfs before Linux 6.6, some network file systems, other
systems) the file is written the usual way throughout; the bytes are the same.
"""

from __future__ import annotations

import errno
import mmap
import os
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import numpy as np

#: Bytes gathered before they go to the file: large writes keep the device busy with few
#: calls; a multiple of any block size a device uses.
BUFFER_BYTES = 1 << 22
#: What `O_DIRECT` needs offsets and lengths to be multiples of: 4 KiB serves every
#: device of 512-byte or 4 KiB logical blocks.
ALIGN = 4096
_O_DIRECT = getattr(os, "O_DIRECT", 0)


class DirectFile:
    """A new file (truncated if it exists) written through `O_DIRECT` where the system
    allows it. `direct` tells which way it is written."""

    def __init__(self, path: str | Path, buffer_bytes: int | None = None) -> None:
        buffer_bytes = BUFFER_BYTES if buffer_bytes is None else buffer_bytes
        if buffer_bytes <= 0 or buffer_bytes % ALIGN:
            raise ValueError(f"buffer_bytes must be a positive multiple of {ALIGN}")
        self.path = Path(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        self.direct = bool(_O_DIRECT)
        try:
            self._fd = os.open(self.path, flags | _O_DIRECT, 0o666)
        except OSError as error:
            if not self.direct or error.errno != errno.EINVAL:
                raise
            self.direct = False
            self._fd = os.open(self.path, flags, 0o666)
        # Anonymous memory is page-aligned, as O_DIRECT wants its buffers.
        self._buffer = mmap.mmap(-1, buffer_bytes)
        # Seen through numpy, which lets go of the interpreter's lock while it copies bytes
        # in (a memoryview's copy holds it: 640 MB of verdicts' CSV held it ~0.2 s, while
        # the fold's threads waited for it).
        self._array = np.frombuffer(self._buffer, dtype=np.uint8)
        self._used = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError(f"{self.path}: write to a closed file")
        view = np.frombuffer(data, dtype=np.uint8)
        size, done = len(view), 0
        room = len(self._array)
        while done < size:
            take = min(room - self._used, size - done)
            self._array[self._used : self._used + take] = view[done : done + take]
            self._used += take
            done += take
            if self._used == room:
                self._drain(room)
        return size

    def _drain(self, size: int) -> None:
        """The buffer's first `size` bytes (a multiple of `ALIGN` while direct) to the
        file; what follows them moved to the buffer's start."""
        out = 0
        while out < size:
            try:
                written = os.write(self._fd, self._array[out:size].data)
            except OSError as error:
                if not self.direct or error.errno != errno.EINVAL:
                    raise
                # Opened, but the device wants larger blocks than ALIGN: nothing was
                # written; the same bytes again, the usual way.
                self._buffered()
                continue
            if written <= 0:  # pragma: no cover - os.write raises rather than return 0
                raise OSError(errno.EIO, f"{self.path}: nothing written")
            out += written
            if self.direct and out % ALIGN and out < size:
                # A short write that left the file unaligned: go on the usual way.
                self._buffered()
        rest = self._used - size
        if rest:
            self._array[:rest] = self._array[size : self._used]
        self._used = rest

    def _buffered(self) -> None:
        """Go on the usual way (only a system with `O_DIRECT` is ever direct)."""
        if self.direct:
            import fcntl

            flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
            fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~_O_DIRECT)
            self.direct = False

    def flush(self) -> None:
        """Nothing to do: bytes go to the file in whole blocks, and at `close`."""

    def close(self) -> None:
        """Write what is left and close the file; again, nothing."""
        if self.closed:
            return
        try:
            whole = self._used - self._used % ALIGN
            if whole:
                self._drain(whole)
            if self._used:
                self._buffered()  # the last, partial block
                self._drain(self._used)
        finally:
            self._shut()

    def abandon(self) -> None:
        """Close the file without writing what is still gathered (a replay that stops:
        the file is removed, and a full device must not fail the removal)."""
        if not self.closed:
            self._shut()

    def _shut(self) -> None:
        self.closed = True
        os.close(self._fd)
        # A write that failed may leave a slice of the buffer held by its traceback: the
        # buffer is then let go with it.
        with suppress(BufferError):
            del self._array
            self._buffer.close()

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
