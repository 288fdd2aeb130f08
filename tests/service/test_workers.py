"""`tactful serve --workers N` gives each worker a listening socket of its own
(SO_REUSEPORT), so keep-alive connections are spread over the workers instead of going
to whichever woke first."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tactful.service import workers
from tactful.service.testing import Server

pytestmark = pytest.mark.skipif(not workers.supported(), reason="no SO_REUSEPORT here")


def test_sockets_share_one_port_each_with_reuseport() -> None:
    sockets = workers.listening_sockets("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(ports) == 1 and ports != {0}
        for s in sockets:
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
    finally:
        for s in sockets:
            s.close()


def test_a_port_taken_without_reuseport_is_an_error_and_leaves_nothing_open() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(OSError):
            workers.listening_sockets("127.0.0.1", taken.getsockname()[1], 2)
    finally:
        taken.close()


def test_each_worker_starts_on_its_own_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[list[socket.socket]] = []

    class FakeProcess:
        def __init__(self, config: object, sockets: list[socket.socket]) -> None:
            self.sockets = sockets

        def start(self) -> None:
            started.append(self.sockets)

    monkeypatch.setattr(workers, "Process", FakeProcess)
    # The supervisor takes SIGINT and SIGTERM when made: not in the test process.
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    config: Any = workers.uvicorn.Config("tactful.service.asgi:app", workers=2)
    sockets = workers.listening_sockets("127.0.0.1", 0, 2)
    try:
        workers.SpreadWorkers(config, sockets=sockets).init_processes()
        assert started == [[sockets[0]], [sockets[1]]]
    finally:
        for s in sockets:
            s.close()


def _sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local `port` in `state` (01 established, 0A listen)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _held(pid: int, port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on local `port` in `state` held open by process `pid`."""
    inodes = _sockets(port, state)
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held.add(target[8:-1])
    return held


def _established(pid: int, port: int) -> int:
    """TCP connections in state ESTABLISHED on local `port` held open by process `pid`."""
    return len(_held(pid, port, "01"))


def _cmdline(pid: int) -> bytes:
    """Process `pid`'s command line (empty once it has exited: a worker just killed may
    be gone between listing the server's processes and reading this)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _workers(server: Server) -> list[int]:
    """The server's worker processes (not the supervisor, nor multiprocessing's tracker)."""
    return [pid for pid in server.pids[1:] if b"spawn_main" in _cmdline(pid)]


def _spread(server: Server) -> list[int]:
    """Open 32 keep-alive connections and count how many each worker holds."""
    # Healthy is one worker up; a socket takes connections once its worker listens.
    deadline = time.monotonic() + 60
    while len(_sockets(server.port, "0A")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_sockets(server.port, "0A")) == 2
    connections = []
    for _ in range(32):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read()
        connections.append(conn)
    try:
        return sorted(_established(pid, server.port) for pid in _workers(server))
    finally:
        for conn in connections:
            conn.close()


def _even(held: list[int]) -> bool:
    # Each worker holds some of the 32 (hashed by the kernel: 4 or fewer on one side has
    # a chance of about 2e-5); on a shared socket one worker often takes nearly all.
    return len(held) == 2 and sum(held) == 32 and min(held) > 4


def test_keep_alive_connections_reach_every_worker(tmp_path: Path) -> None:
    with Server(f"sqlite:///{tmp_path}/tactful.db", workers=2) as server:
        held = _spread(server)
    assert _even(held), held


def test_a_worker_that_dies_is_replaced_on_its_own_socket(tmp_path: Path) -> None:
    with Server(f"sqlite:///{tmp_path}/tactful.db", workers=2) as server:
        before = _workers(server)
        assert len(before) == 2
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = _workers(server)
            if len(after) == 2 and before[0] not in after:
                break
            time.sleep(0.05)
        assert before[1] in after and before[0] not in after, (before, after)
        # The replacement listens on the dead worker's socket only, not on both (where it
        # would compete with the survivor for its connections too).
        held = _spread(server)
        listening = [_held(pid, server.port, "0A") for pid in after]
        assert [len(s) for s in listening] == [1, 1] and listening[0] != listening[1]
    assert _even(held), held


class _FakeProcess:
    """uvicorn's worker process, as far as the supervisor's checks go."""

    def __init__(self, config: object, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.alive = True
        self.exitcode: int | None = None
        self.pid = 0

    def start(self) -> None:
        pass

    def is_alive(self, timeout: float = 5) -> bool:
        return self.alive

    def wait_until_ready(self, timeout: float, should_exit: object = None) -> bool:
        return True

    def kill(self) -> None:
        self.alive, self.exitcode = False, -9

    def terminate(self) -> None:
        self.kill()

    def join(self) -> None:
        pass


def test_replacements_keep_the_socket_of_the_worker_they_replace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from uvicorn.supervisors import multiprocess

    monkeypatch.setattr(workers, "Process", _FakeProcess)
    monkeypatch.setattr(multiprocess, "Process", _FakeProcess)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    config: Any = workers.uvicorn.Config("tactful.service.asgi:app", workers=3)
    sockets = workers.listening_sockets("127.0.0.1", 0, 3)
    try:
        supervisor = workers.SpreadWorkers(config, sockets=sockets)
        supervisor.init_processes()
        first = list(supervisor.processes)
        first[1].alive = False  # died
        supervisor.keep_subprocess_alive()
        assert supervisor.processes[0] is first[0] and supervisor.processes[2] is first[2]
        assert supervisor.processes[1] is not first[1]
        assert [p.sockets for p in supervisor.processes] == [[s] for s in sockets]
        assert supervisor.sockets == sockets
        supervisor.restart_all()  # SIGHUP
        assert not set(supervisor.processes) & set(first)
        assert [p.sockets for p in supervisor.processes] == [[s] for s in sockets]
    finally:
        for s in sockets:
            s.close()
