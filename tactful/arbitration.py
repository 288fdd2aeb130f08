"""Which of several proposals for one customer goes first: the highest `priority`, then
the earliest (as listed). The batch endpoint and the queue's releases share this order."""

from __future__ import annotations

from collections.abc import Sequence

from tactful.model import ContactProposal


def priority_order(proposals: Sequence[ContactProposal]) -> list[int]:
    """Indices of `proposals` grouped by customer, each customer's highest priority first
    and, at equal priority, in the order given (so list them oldest first)."""
    return sorted(
        range(len(proposals)),
        key=lambda i: (proposals[i].customer_id, -proposals[i].priority, i),
    )
