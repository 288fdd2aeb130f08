"""Audience checks: one proposal shape, one `now`, many customers, decided in columns.

`columns.Snapshot` lays many customers' states out as NumPy arrays; `check.check_audience`
compiles the policy's plan for the proposal into one kernel per rule kind
(`kernels.py`), combines them as the engine does, and hands every customer the vector
path cannot settle exactly to `tactful.engine.decide`, which stays the reference.
"""

from __future__ import annotations

from tactful.audience.check import AudienceResult, check_audience
from tactful.audience.columns import Snapshot

__all__ = ["AudienceResult", "Snapshot", "check_audience"]
