"""Several worker processes for `tactful serve`, each on a listening socket of its own.

uvicorn's supervisor shares one listening socket among its workers, and the first worker
to wake accepts a whole burst of new connections. With keep-alive clients (a load
balancer's pool, the HTTP benchmark's 32 wrk connections) one worker can end up holding
most of them while the other idles: `ss -tnp` during the benchmark on PostgreSQL showed
34/0, 29/7, 21/15 and 18/18 client connections per worker in four runs, and a lopsided
run decides at the pace of one process. With `SO_REUSEPORT` each worker listens on a
socket of its own, all bound to the same port, and the kernel spreads new connections
over them evenly.

uvicorn's supervisor still runs the workers (signals, health checks, restarts). A worker
it replaces (one that died or stopped answering its health check, or all of them on
SIGHUP) is replaced on the same socket, so the spread stays even: in CI a worker slow to
answer on a loaded machine was restarted onto every socket and then took all 32 of a
test's connections. Where the platform or uvicorn lacks what this needs, `serve` falls
back to uvicorn's shared socket.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.supervisors.multiprocess import Multiprocess, Process


def supported() -> bool:
    """Whether workers can each have a socket here: SO_REUSEPORT (Linux, the BSDs) and
    uvicorn's supervisor as this module knows it (`Process(config, sockets)`)."""
    parameters = list(inspect.signature(Process).parameters)
    return (
        hasattr(socket, "SO_REUSEPORT")
        and parameters[:2] == ["config", "sockets"]
        and all(
            callable(getattr(Multiprocess, name, None))
            for name in ("init_processes", "keep_subprocess_alive", "restart_all")
        )
    )


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` TCP sockets bound to `host`:`port` with SO_REUSEPORT (port 0: the port the
    first one got), not yet listening (each worker's server listens on its own)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class SpreadWorkers(Multiprocess):
    """uvicorn's supervisor, starting each worker on one of `sockets` (one each), and
    starting a worker's replacement on that worker's socket."""

    def init_processes(self) -> None:
        for sock in self.sockets[: self.processes_num]:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        self._each_on_its_socket(super().keep_subprocess_alive)

    def restart_all(self) -> None:
        # uvicorn gives up the whole restart when a replacement is not ready in time.
        self._each_on_its_socket(super().restart_all, stop_if_kept=True)

    def _each_on_its_socket(self, step: Callable[[], None], stop_if_kept: bool = False) -> None:
        """Run uvicorn's `step` (which checks or replaces every worker in
        `self.processes`, starting replacements on `self.sockets`) one worker at a time,
        with only that worker's socket in view."""
        processes, sockets = self.processes, self.sockets
        try:
            for index, sock in enumerate(sockets[: len(processes)]):
                if self.should_exit.is_set():
                    return
                self.processes, self.sockets = [processes[index]], [sock]
                step()
                kept = self.processes[0] is processes[index]
                processes[index] = self.processes[0]
                if kept and stop_if_kept:
                    return
        finally:
            self.processes, self.sockets = processes, sockets


def run(app: str, *, host: str, port: int, workers: int, **options: Any) -> None:
    """`uvicorn.run(app, host=, port=, workers=, **options)`, each worker on a socket of
    its own where `supported()`."""
    if workers < 2 or not supported():
        uvicorn.run(app, host=host, port=port, workers=workers, **options)
        return
    config = uvicorn.Config(app, host=host, port=port, workers=workers, **options)
    sockets = listening_sockets(host, port, workers)
    try:
        SpreadWorkers(config, sockets=sockets).run()
    finally:
        for sock in sockets:
            sock.close()
