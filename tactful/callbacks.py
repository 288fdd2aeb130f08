"""Call-back reminders, the pure part: from a customer's state, which reminder should
exist and when it is due.

A `callback_requested` event (props `at` or `callback_at`, optional `channel`, `purpose`
and `source`/`team`, the owner) asks to be called at a time; the latest request wins (a
new one reschedules), and one with `cancelled: true` withdraws it (the matter is closed).
The reminder is due at the first instant at or after the requested time that the policy
allows the call-back itself (calling hours, holidays, opt-outs: the engine decides, with
the request as the call's trigger, so caps that yield to a customer's request do not
hold it back). A deny (an opt-out, say) means no reminder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tactful.engine import decide
from tactful.model import ContactProposal, EventKind, Trigger, Verdict
from tactful.policy.document import Policy
from tactful.state import CustomerState

DEFAULT_OWNER = "sales"
DEFAULT_PURPOSE = "service"


@dataclass(frozen=True, slots=True)
class ReminderPlan:
    """What should be true of a customer's reminder for their current call-back request."""

    requested_at: datetime
    for_at: datetime
    channel: str
    owner: str
    event_id: str | None
    #: When to deliver it (None: never; `reason` says why).
    due_at: datetime | None
    reason: str | None = None
    #: Extra fields for the reminder's webhook body.
    payload: Mapping[str, Any] = field(default_factory=dict)


def _owner(props: Mapping[str, Any], default: str) -> str:
    for key in ("owner", "team", "source"):
        value = props.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return default


def reminder_plan(
    state: CustomerState,
    policy: Policy,
    now: datetime,
    *,
    default_owner: str = DEFAULT_OWNER,
) -> ReminderPlan | None:
    """The reminder the customer's current call-back request calls for (None: none)."""
    callback = state.derived.callback
    if callback is None:
        return None
    requested_ts, for_ts, channel = callback
    event = None
    for e in reversed(state.events):
        if e.kind == EventKind.CALLBACK_REQUESTED and e.ts == requested_ts:
            event = e
            break
    props: Mapping[str, Any] = event.properties if event is not None else {}
    requested_at = datetime.fromtimestamp(requested_ts, UTC)
    for_at = datetime.fromtimestamp(for_ts, UTC)
    channel = channel or "call"
    purpose = props.get("purpose")
    proposal = ContactProposal(
        customer_id=state.profile.customer_id,
        channel=channel,
        purpose=purpose if isinstance(purpose, str) and purpose else DEFAULT_PURPOSE,
        at=for_at,
        trigger=Trigger(EventKind.CALLBACK_REQUESTED, requested_at),
        source=_owner(props, default_owner),
    )
    decision = decide(state, proposal, policy, now)
    plan = ReminderPlan(
        requested_at=requested_at,
        for_at=for_at,
        channel=channel,
        owner=proposal.source or default_owner,
        event_id=event.event_id if event is not None else None,
        due_at=None,
        payload={"purpose": proposal.purpose, "note": props.get("note")},
    )
    if decision.verdict is Verdict.ALLOW:
        return _with(plan, due_at=decision.at)
    if decision.verdict is Verdict.DEFER and decision.not_before is not None:
        return _with(plan, due_at=decision.not_before)
    why = "; ".join(r.message for r in decision.reasons) or "not allowed"
    return _with(plan, reason=f"denied: {why}"[:255])


def _with(plan: ReminderPlan, **changes: Any) -> ReminderPlan:
    return replace(plan, **changes)
