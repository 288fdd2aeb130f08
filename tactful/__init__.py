"""tactful: ask before you reach out. A contact-policy engine with one ledger of every contact."""

from __future__ import annotations

from tactful import _native

_native.load()  # the engine from source where its compiled module is not to be used

from tactful.engine import decide, next_allowed
from tactful.library import Engine
from tactful.model import (
    Contact,
    ContactProposal,
    ContactStatus,
    Content,
    CustomerProfile,
    Decision,
    Event,
    EventKind,
    Outcome,
    Reason,
    Trigger,
    Verdict,
)
from tactful.policy.document import Policy
from tactful.policy.errors import PolicyError
from tactful.state import CustomerState

__version__ = "0.1.0"

__all__ = [
    "Contact",
    "ContactProposal",
    "ContactStatus",
    "Content",
    "CustomerProfile",
    "CustomerState",
    "Decision",
    "Engine",
    "Event",
    "EventKind",
    "Outcome",
    "Policy",
    "PolicyError",
    "Reason",
    "Trigger",
    "Verdict",
    "decide",
    "next_allowed",
]
