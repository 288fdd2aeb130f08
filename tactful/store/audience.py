"""Audience checks against a store: customers read in chunks, decided in columns.

`check_store` reads each chunk with `Store.load_states` (a few queries per chunk; states
the store's cache holds are taken from it), checks it with
`tactful.audience.check_audience`, and yields one `Line` per id in input order. Each line
is what `Store.decide` without a hold would answer for that id: an alias is checked as
its canonical customer, an erased id gets the answer `if_suppressed` gives, and
`address_check` turns the verdict into the final one when the customer's addresses are
on the suppression list by address.

With `hold`, each customer the check allows is decided again by `hold` (the service's
single-decision path: locked per customer, recorded in the audit log, the hold placed in
the same transaction), so holds are exactly those single decisions would place; the line
then carries that decision, which may differ if the ledger changed in between.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tactful.audience import Snapshot, check_audience
from tactful.model import ContactProposal, Decision, Reason, Verdict
from tactful.policy.document import Policy
from tactful.state import CustomerState
from tactful.store.base import AddressCheck, Store

#: Customers per chunk: what one snapshot holds and one batch of queries reads.
CHUNK = 5000

DecideFn = Callable[[CustomerState, ContactProposal, datetime], Decision]
HoldFn = Callable[[ContactProposal], Decision]


@dataclass(slots=True)
class Line:
    """One customer's answer in an audience check."""

    customer_id: str
    verdict: Verdict
    not_before: datetime | None
    reasons: tuple[Reason, ...]
    decision_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "customer_id": self.customer_id,
            "verdict": self.verdict.value,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "reasons": [r.as_dict() for r in self.reasons],
        }
        if self.decision_id is not None:
            out["decision_id"] = self.decision_id
        return out


@dataclass
class Summary:
    """Counts over an audience: by verdict, by rule (customers held back by each), and by
    the path that decided them (vector kernels, scalar engine, store hold)."""

    counts: Counter[str] = field(default_factory=lambda: Counter(allow=0, defer=0, deny=0))
    by_rule: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)

    def add(self, line: Line) -> None:
        self.counts[line.verdict.value] += 1
        for r in line.reasons:
            self.by_rule[r.rule] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(self.counts),
            "by_rule": dict(self.by_rule.most_common()),
            "paths": dict(self.paths),
        }


def chunks(ids: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for cid in ids:
        batch.append(cid)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_store(
    store: Store,
    customer_ids: Iterable[str],
    template: ContactProposal,
    policy: Policy,
    now: Callable[[], datetime],
    *,
    if_suppressed: DecideFn,
    address_check: AddressCheck | None = None,
    hold: HoldFn | None = None,
    summary: Summary | None = None,
    chunk: int = CHUNK,
) -> Iterator[Line]:
    """Check `template` (its customer id ignored) for every id, chunk by chunk, at the
    instant `now()` gives when the chunk is read; one line per id, in order. Pass the
    `address_check` that single decisions get, so that lines equal them."""
    if template.to:
        raise ValueError("to: an audience proposal names no address; list customer ids")
    summary = summary if summary is not None else Summary()
    for ids in chunks(customer_ids, chunk):
        loaded = store.load_states(ids)
        rows = [loaded[cid] for cid in ids]
        when = now()
        result = check_audience(Snapshot.build([r.state for r in rows]), template, policy, when)
        summary.paths.update(result.paths)
        for row, (cid, got) in enumerate(zip(ids, rows, strict=True)):
            # Decided as the canonical customer, as `Store.decide` does.
            proposal = replace(template, customer_id=got.state.profile.customer_id)
            if got.erased:
                d = if_suppressed(got.state, proposal, when)
            else:
                o = result.outcome(row)
                d = Decision(o.verdict, o.reasons, policy.ref, when, o.not_before)
            if address_check is not None and got.hits:
                d = address_check(d, proposal, got.hits)
            line = Line(cid, d.verdict, d.not_before, d.reasons)
            if hold is not None and line.verdict is Verdict.ALLOW:
                d = hold(replace(template, customer_id=cid, idempotency_key=None))
                line = Line(cid, d.verdict, d.not_before, d.reasons, d.decision_id)
                summary.paths["held"] += d.verdict is Verdict.ALLOW
            summary.add(line)
            yield line
