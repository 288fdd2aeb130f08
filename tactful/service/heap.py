"""Keep CPython's garbage collector from pausing the service for long.

A full collection walks every container object the process holds: the imported modules,
the app, and the customers' folded states the store keeps between decisions (some 16
objects each). With tens of thousands of states that walk takes 100 ms or more, during
which no request is answered, and the store's churn of states makes it frequent. Objects
that live on (modules, the app, cached states) need no collecting: `gc.freeze()` moves
them into a generation the collector never walks, so its passes stay short. Frozen
objects are still freed by reference counting when dropped; only garbage that is part of
a reference cycle and happened to be alive at a freeze is never reclaimed, so every
`thaw_seconds` everything is handed back to the collector once.
"""

from __future__ import annotations

import asyncio
import gc
import time

#: How often frozen objects are handed back for one full collection (a long pause).
THAW_SECONDS = 3600.0


async def keep_heap_frozen(every: float, thaw_seconds: float = THAW_SECONDS) -> None:
    """Freeze what survived, now and every `every` seconds, until cancelled."""
    gc.collect()
    gc.freeze()
    thawed = time.monotonic()
    while True:
        await asyncio.sleep(every)
        if time.monotonic() - thawed >= thaw_seconds:
            gc.unfreeze()
            thawed = time.monotonic()
            continue
        gc.freeze()
