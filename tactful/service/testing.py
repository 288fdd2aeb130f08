"""A real `tactful serve` process on a free loopback port, for tests and benchmarks.

Both `tests/` and `bench/` start servers through this one helper, so a change in how the
service is launched (options, health check, shutdown) is made once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

TACTFUL = [sys.executable, "-m", "tactful.cli"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_key(url: str, *scopes: str) -> str:
    """A new API key through the CLI, as an operator would make it."""
    args = [*TACTFUL, "keys", "create", "--database-url", url]
    for scope in scopes:
        args += ["--scope", scope]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip().splitlines()[-1]


class Server:
    """A `tactful serve` process listening on 127.0.0.1 only. `stop()` is SIGTERM (then
    SIGKILL for the process group); `kill()` is SIGKILL at once: no clean shutdown."""

    def __init__(
        self,
        url: str,
        *,
        policy: str = "courtesy",
        workers: int = 1,
        port: int | None = None,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.url = url
        self.policy = policy
        self.workers = workers
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env or {}
        self.extra = extra
        #: Where the process runs; a benchmark of another tree of the package sets it away
        #: from the repository, else `python -m` would import tactful from there.
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def args(self) -> list[str]:
        return [
            *TACTFUL, "serve", "--database-url", self.url, "--policy", self.policy,
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
            "--log-level", "warning", *self.extra,
        ]  # fmt: skip

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.base + "/healthz", timeout=1) as response:
                return int(response.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 60.0) -> Server:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.args,
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            start_new_session=True,
            cwd=self.cwd,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tactful serve exited with {self.proc.returncode}")
            if self.healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("tactful serve did not become healthy in time")

    @property
    def pids(self) -> list[int]:
        """The server's process and its workers (for CPU accounting or a profiler)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            found += [int(p) for p in children.split()]
        except OSError:
            pass
        return found

    def kill(self) -> None:
        """SIGKILL the server and its workers, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the workers go with it.
                self.kill()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
