"""What a running service holds: settings, store, the active policy, a clock, metrics.

Routes, the CLI and workers go through `Runtime` so deciding looks the same everywhere.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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
from tactful.store.base import AlsoFn, DecideCall, DecideResult, Store, StoreError

Clock = Callable[[], datetime]
P = ParamSpec("P")
T = TypeVar("T")

ERASED = Reason(
    rule="erased",
    kind="suppression",
    message="This customer id was erased on request; it stays suppressed.",
)


#: A proposal waiting for its group's answer (see `Runtime.decide_soon`).
Arrival = tuple[ContactProposal, "asyncio.Future[tuple[Decision, bool]]"]

#: At most this many proposals decided in one transaction by `decide_soon` (a transaction
#: holds its customers' locks, and its callers' answers, until it commits).
TOGETHER = 64


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
        #: Proposals waiting for their group (see `decide_soon`), and the loop they wait on.
        self._arrived: list[Arrival] = []
        self._arrived_on: asyncio.AbstractEventLoop | None = None
        in_thread = settings.decide_thread
        if in_thread is None:
            in_thread = store.remote
        #: The thread that decides groups (`_send_group`), if not the event loop, and
        #: whether a group is in it now.
        self._decider = ThreadPoolExecutor(1, "tactful-decide") if in_thread else None
        self._deciding = False

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
        call = self._call(proposal, hold, also)
        decision, replayed = self.store.decide(
            call.proposal,
            call.decide_fn,
            now=call.now,
            hold_ttl_seconds=call.hold_ttl_seconds,
            hold=call.hold,
            if_suppressed=call.if_suppressed,
            also=call.also,
            address_check=call.address_check,
        )
        if not replayed:
            self.metrics.observe(
                decision, proposal.channel, proposal.purpose, time.perf_counter() - started
            )
        return decision, replayed

    def decide_many(self, proposals: Sequence[ContactProposal]) -> list[DecideResult]:
        """`decide` for each proposal (holds placed), in order, in one transaction: see
        `Store.decide_many`. Each result is the answer or the exception for that proposal."""
        started = time.perf_counter()
        results = self.store.decide_many([self._call(p, True, None) for p in proposals])
        elapsed = time.perf_counter() - started
        self.metrics.group_size.observe(len(proposals))
        for proposal, result in zip(proposals, results, strict=True):
            if not isinstance(result, Exception) and not result[1]:
                self.metrics.observe(result[0], proposal.channel, proposal.purpose, elapsed)
        return results

    def _call(self, proposal: ContactProposal, hold: bool, also: AlsoFn | None) -> DecideCall:
        policy = self.policy

        def run(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
            return decide(state, p, policy, now)

        def erased(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
            at = max(now, p.at) if p.at else now
            return Decision(Verdict.DENY, (ERASED,), policy.ref, at)

        return DecideCall(
            proposal,
            run,
            self.clock(),
            self.settings.hold_ttl_seconds,
            hold=hold,
            if_suppressed=erased,
            also=also,
            address_check=address_check,
        )

    async def decide_soon(self, proposal: ContactProposal) -> tuple[Decision, bool]:
        """`decide` (with its hold) from async code, together with other proposals: one
        transaction and one commit for a group of them (`decide_many`), which costs each
        less than a commit of its own. Nobody is answered before the commit.

        On the event loop (SQLite), a group is what reached the loop in the same turn. In
        the decide thread (PostgreSQL, `Settings.decide_thread`), one group at a time is in
        the database while the loop goes on reading requests: those that arrive meanwhile
        are the next group, sent as soon as the one before is answered. With store threads,
        each decides on its own."""
        if self._limiter is not None:
            return await self.run_store(self.decide, proposal)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Decision, bool]] = loop.create_future()
        if self._arrived_on is not loop:
            # Another event loop (a test client may run one per request): whatever waited
            # on the last one went with it.
            self._arrived, self._arrived_on, self._deciding = [], loop, False
        self._arrived.append((proposal, future))
        if len(self._arrived) == 1:
            if self._decider is None:
                loop.call_soon(self._decide_arrived)
            elif not self._deciding:
                loop.call_soon(self._send_group, loop)
        return await future

    def _group(self) -> list[Arrival]:
        """The next group: at most `TOGETHER` of the proposals waiting, by customer id, so
        that concurrent transactions lock customers in one order (on PostgreSQL, two in
        opposite orders would deadlock). Proposals that arrived together have no order of
        their own; one customer's keep theirs."""
        group = sorted(self._arrived[:TOGETHER], key=lambda a: a[0].customer_id)
        del self._arrived[:TOGETHER]
        return group

    def _decide_group(self, group: list[Arrival]) -> list[DecideResult]:
        try:
            return self.decide_many([proposal for proposal, _ in group])
        except Exception as error:  # each caller gets it, as from `decide`
            return [error] * len(group)

    @staticmethod
    def _answer(group: list[Arrival], results: list[DecideResult]) -> None:
        for (_, future), result in zip(group, results, strict=True):
            if future.done():
                continue  # the request was given up (cancelled); its decision stands
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _decide_arrived(self) -> None:
        """Decide what `decide_soon` collected, on the event loop, group after group."""
        while self._arrived:
            group = self._group()
            self._answer(group, self._decide_group(group))

    def _send_group(self, loop: asyncio.AbstractEventLoop) -> None:
        """Decide the next group in the decide thread; when it is answered, the next."""
        if self._deciding or not self._arrived or self._arrived_on is not loop:
            return
        assert self._decider is not None
        group = self._group()
        self._deciding = True

        def decided(done: asyncio.Future[list[DecideResult]]) -> None:
            if self._arrived_on is not loop:
                return  # the loop was left behind (see `decide_soon`)
            self._deciding = False
            if done.cancelled() or done.exception() is not None:
                # Only what `_decide_group` does not catch: the thread went away mid-group.
                failed = StoreError("the decide thread stopped before answering")
                self._answer(group, [failed] * len(group))
            else:
                self._answer(group, done.result())
            self._send_group(loop)

        try:
            running = loop.run_in_executor(self._decider, self._decide_group, group)
        except RuntimeError as error:  # the thread was shut down (`close`): nobody waits
            self._deciding = False
            self._answer(group, [StoreError(f"not deciding any more: {error}")] * len(group))
            return
        running.add_done_callback(decided)

    def close(self) -> None:
        """Let the decide thread finish its group and go."""
        if self._decider is not None:
            self._decider.shutdown(wait=True)

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
