"""A real `tactful serve` process on a free loopback port (after tests/service/server.py)."""

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

TACTFUL = [sys.executable, "-m", "tactful.cli"]


def free_port() -> int:
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
    """A `tactful serve` process listening on 127.0.0.1 only."""

    def __init__(
        self,
        url: str,
        *,
        workers: int = 1,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> None:
        self.url = url
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = env or {}
        self.extra = extra
        #: Not the repository: `python -m` would import tactful from the working directory.
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def args(self) -> list[str]:
        return [
            *TACTFUL, "serve", "--database-url", self.url, "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers), "--log-level", "warning",
            *self.extra,
        ]  # fmt: skip

    def _healthy(self) -> bool:
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
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("tactful serve did not become healthy in time")

    @property
    def pids(self) -> list[int]:
        """The server's process and its workers (for a profiler to attach to)."""
        if self.proc is None:
            return []
        found = [self.proc.pid]
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            found += [int(p) for p in children.split()]
        except OSError:
            pass
        return found

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                # Its own process group (start_new_session): the workers go with it.
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
