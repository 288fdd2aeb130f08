"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that checks each
delivery's signature, keeps the first copy of each delivery id (later copies are
duplicates, as a careful receiver would treat them) and answers as scripted."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tactful.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, SignatureError, verify


@dataclass
class Received:
    delivery_id: str
    kind: str
    body: dict[str, Any]
    at: datetime


@dataclass
class Receiver:
    """`statuses` are answered in turn (then 200); `hold` makes a request wait until set."""

    secret: str = "whsec_test_secret_0123456789"
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    statuses: list[int] = field(default_factory=list)
    #: The tolerance of the signature's timestamp (an injected clock may jump between the
    #: signing and this check only by what the test does in between).
    tolerance: float = 300
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    deliveries: dict[str, Received] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    requests: int = 0
    rejected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver._take(self.headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _take(self, headers: Any, body: bytes) -> int:
        with self._lock:
            self.requests += 1
            try:
                verify(
                    self.secret, headers.get(SIGNATURE_HEADER), body, self.clock(), self.tolerance
                )
            except SignatureError as error:
                self.rejected.append(str(error))
                return 401
            if self.statuses:
                status = self.statuses.pop(0)
                if status >= 300:
                    return status
            delivery_id = headers.get(DELIVERY_HEADER)
            data = json.loads(body)
            if delivery_id in self.deliveries:
                self.duplicates.append(delivery_id)
            else:
                self.deliveries[delivery_id] = Received(
                    delivery_id, data["type"], data, self.clock()
                )
            return 200

    def of_kind(self, kind: str) -> list[Received]:
        with self._lock:
            return [r for r in self.deliveries.values() if r.kind == kind]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
