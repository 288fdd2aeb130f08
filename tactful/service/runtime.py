"""What a running service holds: settings, store, the active policy, a clock, metrics.

Routes, the CLI and workers go through `Runtime` so deciding looks the same everywhere.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread

from tactful.engine import decide
from tactful.model import (
    Contact,
    ContactProposal,
    Decision,
    Outcome,
    PolicyRef,
    Reason,
    Verdict,
    outcome_signal,
)
from tactful.policy.document import Policy, read_policy
from tactful.service.config import Settings
from tactful.service.identity import address_check
from tactful.service.metrics import Metrics
from tactful.service.tokens import LinkToken, sign
from tactful.state import CustomerState
from tactful.store.base import AlsoFn, Store

Clock = Callable[[], datetime]
P = ParamSpec("P")
T = TypeVar("T")

ERASED = Reason(
    rule="erased",
    kind="suppression",
    message="This customer id was erased on request; it stays suppressed.",
)


def system_clock() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._lock = threading.Lock()
        self.policy = self._initial_policy()
        threads = settings.store_threads
        self._limiter = anyio.CapacityLimiter(threads) if threads > 0 else None

    def _initial_policy(self) -> Policy:
        active = self.store.active_policy()
        if active is not None:
            return Policy.from_text(active.text, f"{active.name} v{active.version} (stored)")
        text, file = read_policy(self.settings.policy)
        policy = Policy.from_text(text, file)
        self.store.save_policy(
            policy.name, policy.version, text, author="tactful serve", now=self.clock()
        )
        return policy

    def adopt(self, text: str, *, author: str | None, file: str = "<request>") -> Policy:
        """Validate and make a new policy active; the old one serves until this returns."""
        policy = Policy.from_text(text, file)
        self.store.save_policy(policy.name, policy.version, text, author=author, now=self.clock())
        with self._lock:
            self.policy = policy
        return policy

    # -- running store work from async routes --------------------------------------------

    async def run_store(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run store work for an async route: on the event loop itself, or in a worker
        thread (see `Settings.store_threads`)."""
        if self._limiter is None:
            return fn(*args, **kwargs)
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self._limiter
        )

    # -- deciding ----------------------------------------------------------------------

    def decide(
        self, proposal: ContactProposal, *, hold: bool = True, also: AlsoFn | None = None
    ) -> tuple[Decision, bool]:
        """Decide and (for an allow) place the hold atomically, with `also`'s writes in the
        same transaction. Returns (decision, replayed)."""
        started = time.perf_counter()
        policy = self.policy

        def run(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
            return decide(state, p, policy, now)

        def erased(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
            at = max(now, p.at) if p.at else now
            return Decision(Verdict.DENY, (ERASED,), policy.ref, at)

        decision, replayed = self.store.decide(
            proposal,
            run,
            now=self.clock(),
            hold_ttl_seconds=self.settings.hold_ttl_seconds,
            hold=hold,
            if_suppressed=erased,
            also=also,
            address_check=address_check,
        )
        if not replayed:
            self.metrics.observe(
                decision, proposal.channel, proposal.purpose, time.perf_counter() - started
            )
        return decision, replayed

    def record_outcome(self, decision_id: str, outcome: Outcome) -> Contact:
        """Record an outcome; an unsubscribe or complaint through a contact is also a signal
        that stops that channel (for that purpose) at once."""
        now = self.clock()
        contact = self.store.record_outcome(decision_id, outcome.value, now=now)
        signal = outcome_signal(contact, outcome.value, now)
        if signal is not None:
            self.store.add_events([signal], received_at=now)
        return contact

    def unavailable_decision(self, proposal: ContactProposal) -> Decision | None:
        """The answer for a transactional proposal while the store is down, if the settings
        let it through; None means fail closed."""
        if proposal.purpose != "transactional":
            return None
        if self.settings.transactional_when_store_down != "allow":
            return None
        now = self.clock()
        reason = Reason(
            rule="store-unavailable",
            kind="availability",
            message="The store is unreachable; transactional contact allowed by configuration, "
            "with no hold and no audit record.",
        )
        return Decision(
            Verdict.ALLOW,
            (),
            PolicyRef(self.policy.name, self.policy.version),
            now,
            flags=(reason,),
        )

    # -- links for customers -------------------------------------------------------------

    def link(
        self,
        customer_id: str,
        action: str,
        *,
        channel: str | None = None,
        purpose: str | None = None,
    ) -> str:
        expires = self.clock() + timedelta(days=self.settings.link_ttl_days)
        token = sign(LinkToken(customer_id, action, expires, channel, purpose), self.store.secret())
        prefix = "/u/" if action == "unsubscribe" else "/p/"
        return f"{self.settings.base_url}{prefix}{token}"
