"""The deferred-delivery worker: releases queued proposals when they become allowed,
keeps call-back reminders in step with the ledger and fires them when due, and delivers
the outbox to webhooks.

One `tick` does one round of each; `run` ticks until told to stop, resting
`worker_poll_seconds` when a round found nothing to do. It runs inside `tactful serve`
(a thread per process) or alone as `tactful worker`; any number may run at once against
one database: claims are leased and every release or reminder commits with its outbox
rows in one transaction (see `tactful.store.delivery`).

Fairness: a claim takes the due items of up to `worker_batch` customers, transactional
items first, then the longest-due; all of one customer's due items are claimed together
and released in priority order (the batch endpoint's order), so a campaign's backlog
delays a due transactional message by one batch at most.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from tactful import __version__
from tactful.arbitration import priority_order
from tactful.callbacks import ReminderPlan, reminder_plan
from tactful.engine import pin_trigger
from tactful.model import ContactProposal
from tactful.policy.document import Policy
from tactful.service.runtime import Runtime
from tactful.state import CustomerState
from tactful.store.base import StoreError
from tactful.store.delivery import (
    Claimed,
    DeliveryStore,
    LeaseLost,
    QueuedItem,
    delivery_store,
)
from tactful.store.sql import proposal_of as recorded_proposal
from tactful.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    retry_delay,
    sign,
)

log = logging.getLogger("tactful.worker")

#: POSTs a body to a URL with headers within a timeout; returns the HTTP status, or
#: raises OSError (refused, timed out, ...).
Send = Callable[[str, bytes, Mapping[str, str], float], int]


def http_send(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """`Send` over urllib: any HTTP status is returned, network failures raise OSError."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read(65536)
        return int(error.code)


def proposal_of(data: Mapping[str, Any]) -> ContactProposal:
    """A queued proposal (the audit log's field names) back as a proposal decided now: the
    time it was first proposed for has passed, and the queue item, not the idempotency
    key, keeps a release to one."""
    return replace(recorded_proposal(data), at=None, idempotency_key=None)


@dataclass
class Tally:
    """What one tick did."""

    released: int = 0
    deferred: int = 0
    dropped: int = 0
    reminders: int = 0
    fired: int = 0
    delivered: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return any(
            (self.released, self.deferred, self.dropped, self.reminders, self.delivered,
             self.failed)
        )  # fmt: skip


class Worker:
    """The release, reminder and delivery loops over one runtime's store and policy."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str | None = None,
        send: Send = http_send,
        follow_policy: bool = False,
    ) -> None:
        self.runtime = runtime
        self.settings = s = runtime.settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.send = send
        self.deliveries: DeliveryStore = delivery_store(runtime.store)
        self.deliveries.give_up_after = timedelta(hours=s.worker_give_up_hours)
        self.lease = timedelta(seconds=s.worker_lease_seconds)
        #: Alone (`tactful worker`), re-read the active policy now and then: the API
        #: processes adopt new versions, this one must notice.
        self._follow_policy = follow_policy
        self._policy_checked = 0.0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- one round -------------------------------------------------------------------------

    def tick(self) -> Tally:
        """One round: release due queue items, reconcile reminders, deliver the outbox."""
        tally = Tally()
        self._refresh_policy()
        for step in (self.release_due, self.reconcile_reminders, self.deliver_due):
            try:
                step(tally)
            except StoreError as error:
                tally.errors.append(str(error))
                log.warning("worker %s: %s", self.name, error)
        return tally

    def run_until_idle(self, max_ticks: int = 1000) -> Tally:
        """Tick until a round finds nothing to do (tests and `tactful worker --once`)."""
        total = Tally()
        for _ in range(max_ticks):
            t = self.tick()
            for name in ("released", "deferred", "dropped", "reminders", "fired", "delivered",
                         "failed"):  # fmt: skip
                setattr(total, name, getattr(total, name) + getattr(t, name))
            total.errors += t.errors
            if not t.busy:
                break
        return total

    def _refresh_policy(self) -> None:
        if not self._follow_policy or time.monotonic() - self._policy_checked < 5:
            return
        self._policy_checked = time.monotonic()
        active = self.runtime.store.active_policy()
        current = self.runtime.policy
        if active is not None and (active.name, active.version) != (current.name, current.version):
            self.runtime.policy = Policy.from_text(
                active.text, f"{active.name} v{active.version} (stored)"
            )

    # -- the queue -------------------------------------------------------------------------

    def release_due(self, tally: Tally) -> None:
        now = self.runtime.clock()
        items = self.deliveries.claim_queue(
            self.name, now=now, lease=self.lease, limit=self.settings.worker_batch
        )
        by_customer: dict[str, list[QueuedItem]] = {}
        for item in sorted(items, key=lambda i: (i.created_at, i.id)):
            by_customer.setdefault(item.customer_id, []).append(item)
        for group in by_customer.values():
            proposals = [self._pinned(i, proposal_of(i.proposal)) for i in group]
            for index in priority_order(proposals):
                self._release(group[index], proposals[index], tally)

    def _pinned(self, item: QueuedItem, proposal: ContactProposal) -> ContactProposal:
        """A proposal queued with a trigger but not its time (before the service named it
        on queueing): the trigger as it was taken when the proposal was queued."""
        if proposal.trigger is None or proposal.trigger.at is not None:
            return proposal
        state = self.runtime.store.load_state(item.customer_id)
        return pin_trigger(state, proposal, item.created_at)

    def _release(self, item: QueuedItem, proposal: ContactProposal, tally: Tally) -> None:
        now = self.runtime.clock()
        ds = self.deliveries
        if item.expires_at is not None and item.expires_at <= now:
            if ds.drop_expired(item, worker=self.name, now=now):
                tally.dropped += 1
            return
        try:
            outcome, _ = ds.release(
                item, proposal, partial(self.runtime.decide, hold=True), worker=self.name, now=now
            )
        except LeaseLost as lost:
            log.info("worker %s: %s", self.name, lost)
            return
        if outcome == "released":
            tally.released += 1
        elif outcome == "deferred":
            tally.deferred += 1
        else:
            tally.dropped += 1

    # -- reminders -------------------------------------------------------------------------

    def _plan(self, state: CustomerState, now: datetime) -> ReminderPlan | None:
        return reminder_plan(
            state, self.runtime.policy, now, default_owner=self.settings.callback_owner
        )

    def reconcile_reminders(self, tally: Tally) -> None:
        now = self.runtime.clock()
        ds = self.deliveries
        for customer_id in ds.reminder_customers(now=now, limit=self.settings.worker_batch):
            changes = ds.reconcile_reminder(customer_id, self._plan, now=now)
            tally.reminders += len(changes)
            tally.fired += changes.count("fired")

    # -- the outbox ------------------------------------------------------------------------

    def deliver_due(self, tally: Tally) -> None:
        now = self.runtime.clock()
        claimed = self.deliveries.claim_deliveries(
            now=now, lease=self.lease, limit=self.settings.worker_batch
        )
        for c in claimed:
            if self._deliver(c):
                tally.delivered += 1
            else:
                tally.failed += 1

    def _deliver(self, c: Claimed) -> bool:
        s = self.settings
        d = c.delivery
        now = self.runtime.clock()
        body = json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"tactful/{__version__}",
            DELIVERY_HEADER: d.id,
            EVENT_HEADER: d.kind,
            SIGNATURE_HEADER: sign(c.secret, body, now),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            status = self.send(c.url, body, headers, s.worker_http_timeout)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except OSError as failure:
            error = f"{type(failure).__name__}: {failure}"[:500]
        elapsed = (time.perf_counter() - started) * 1000
        after = self.runtime.clock()
        retry_at = after + retry_delay(
            d.attempts + 1,
            base=timedelta(seconds=s.worker_retry_base_seconds),
            cap=timedelta(seconds=s.worker_retry_cap_seconds),
        )
        state = self.deliveries.record_attempt(
            d.id,
            worker=self.name,
            now=after,
            status=status,
            error=error,
            duration_ms=elapsed,
            retry_at=retry_at,
        )
        return state == "delivered"

    # -- running ---------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Tick until `stop` is set, resting between idle rounds."""
        stop = stop or self._stop
        while not stop.is_set():
            try:
                busy = self.tick().busy
            except Exception:  # a bug must not stop deliveries for good: log, rest, go on
                log.exception("worker %s: round failed", self.name)
                busy = False
            if not busy:
                stop.wait(self.settings.worker_poll_seconds)

    def start(self) -> threading.Thread:
        """Run in a daemon thread (as `tactful serve` does); `stop()` ends it."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="tactful-worker", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
