"""The decision engine: pure, deterministic, and the same for the service, batch and replay.

`decide(state, proposal, policy, now)` asks every rule in scope when it would allow the
contact. If all allow at the proposed time: allow. If a rule that denies holds, or one says
never: deny. Otherwise the earliest instant at which *every* rule allows it is found by
moving forward to each rule's own answer until all agree (a cap may reopen inside closed
calling hours, so the latest single answer is not enough): defer until then, or deny when
no such instant lies within the policy's horizon.
"""

from __future__ import annotations

from datetime import datetime

from tactful.model import ContactProposal, Decision, Reason, Verdict, from_ts
from tactful.policy.document import Policy
from tactful.rules.base import NEVER, Context, Rule
from tactful.state import CustomerState

#: Bound on the search for a common allowed instant; each step moves strictly forward.
MAX_STEPS = 500


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _reason(rule: Rule, ctx: Context, t: float, until: float) -> Reason:
    message = rule.message
    if "{" in message:
        message = message.format_map(_Placeholders(rule.details(ctx, t)))
    return Reason(
        rule=rule.id,
        kind=rule.kind,
        message=message,
        until=None if until == NEVER else from_ts(until),
    )


def decide(
    state: CustomerState, proposal: ContactProposal, policy: Policy, now: datetime
) -> Decision:
    """Decide one proposal for one customer at `now` (the proposal's `at`, if later)."""
    now_ts = now.timestamp()
    t = now_ts
    if proposal.at is not None:
        t = max(t, proposal.at.timestamp())
    ctx = Context(state, proposal, policy, now_ts)

    rules: list[Rule] = []
    blocking: list[tuple[Rule, float]] = []
    flags: list[Reason] = []
    for rule in policy.rules_for(proposal.channel, proposal.purpose):
        if not rule.applies(ctx):
            continue
        u = rule.check(ctx, t)
        if rule.effective_mode == "flag":
            if u > t:
                flags.append(_reason(rule, ctx, t, t))
            continue
        rules.append(rule)
        if u > t:
            blocking.append((rule, u))

    at = from_ts(t)
    if not blocking:
        return Decision(Verdict.ALLOW, (), policy.ref, at, flags=tuple(flags))

    denying = [(r, u) for r, u in blocking if u == NEVER or r.effective_mode == "deny"]
    if denying:
        ordered = denying + [b for b in blocking if b not in denying]
        reasons = tuple(_reason(r, ctx, t, u) for r, u in ordered)
        return Decision(Verdict.DENY, reasons, policy.ref, at, flags=tuple(flags))

    reasons_by_rule = {r.id: _reason(r, ctx, t, u) for r, u in blocking}
    u = max(until for _, until in blocking)
    limit = t + policy.horizon
    for _ in range(MAX_STEPS):
        if u > limit:
            break
        moved = False
        for rule in rules:
            v = rule.check(ctx, u)
            if v > u:
                if rule.id not in reasons_by_rule:
                    reasons_by_rule[rule.id] = _reason(rule, ctx, u, v)
                u = v
                moved = True
                if u > limit:
                    break
        if not moved:
            return Decision(
                Verdict.DEFER,
                tuple(reasons_by_rule.values()),
                policy.ref,
                at,
                not_before=from_ts(u),
                flags=tuple(flags),
            )
    horizon_days = policy.horizon / 86400
    reasons = (
        *reasons_by_rule.values(),
        Reason(
            rule="horizon",
            kind="horizon",
            message=f"No time within {horizon_days:g} days satisfies every rule.",
        ),
    )
    return Decision(Verdict.DENY, reasons, policy.ref, at, flags=tuple(flags))


def next_allowed(
    state: CustomerState,
    channel: str,
    purpose: str,
    policy: Policy,
    now: datetime,
    *,
    source: str | None = None,
) -> tuple[datetime | None, Decision]:
    """The earliest time a contact on `channel` for `purpose` would be allowed (None: never),
    with the decision that explains it."""
    proposal = ContactProposal(
        customer_id=state.profile.customer_id, channel=channel, purpose=purpose, source=source
    )
    decision = decide(state, proposal, policy, now)
    if decision.verdict is Verdict.ALLOW:
        return decision.at, decision
    if decision.verdict is Verdict.DEFER:
        return decision.not_before, decision
    return None, decision


def pressure(state: CustomerState, policy: Policy, now: datetime) -> float | None:
    """The customer's contact pressure now, as the policy's first pressure rule sees it
    (None when the policy has no pressure rule)."""
    from tactful.rules.pressure import PressureRule

    for rule in policy.rules:
        if isinstance(rule, PressureRule):
            probe = ContactProposal(state.profile.customer_id, "email", "marketing")
            ctx = Context(state, probe, policy, now.timestamp())
            return rule.at(ctx, now.timestamp())
    return None
