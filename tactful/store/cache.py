"""Folded customer states kept between decisions, valid for one version of the customer.

Every write that touches a customer's ledger (events, contacts and holds, profile) bumps
the `version` of their row in `customers`; a new row starts at a random version, so a
customer erased and created again never matches a state cached before. A store reads the
version inside its locked transaction and reuses the cached state only when it matches,
so a state is never stale, even when other processes write to the same database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tactful.state import CustomerState

#: Customers kept per store (a few KB each for a typical ledger).
DEFAULT_SIZE = 20_000


class StateCache:
    """A thread-safe LRU of customer id -> (version, state).

    The states kept here are never handed out to be changed: callers work on `copy()`s.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._states: OrderedDict[str, tuple[int, CustomerState]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, customer_id: str, version: int) -> CustomerState | None:
        """The state cached for this customer at exactly this version, if any."""
        with self._lock:
            found = self._states.get(customer_id)
            if found is None or found[0] != version:
                self.misses += 1
                return None
            self._states.move_to_end(customer_id)
            self.hits += 1
            return found[1]

    def put(self, customer_id: str, version: int, state: CustomerState) -> None:
        """Keep `state` as the customer's state at `version` (it must not change after)."""
        if self.size <= 0:
            return
        # Fold the events now, once, so that every copy shares the derived facts.
        state.derived  # noqa: B018
        with self._lock:
            self._states[customer_id] = (version, state)
            self._states.move_to_end(customer_id)
            while len(self._states) > self.size:
                self._states.popitem(last=False)

    def discard(self, customer_id: str) -> None:
        with self._lock:
            self._states.pop(customer_id, None)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()

    def __len__(self) -> int:
        return len(self._states)
