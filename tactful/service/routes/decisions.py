"""Decisions: ask before contacting, then confirm it was sent, cancel it, or report how it went."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import Response

from tactful.arbitration import priority_order
from tactful.model import ContactProposal, Decision, Verdict, utc
from tactful.service.deps import DecideKey, RuntimeDep
from tactful.service.identity import addressed
from tactful.service.routes.queue import decide_or_queue, unavailable
from tactful.service.runtime import Runtime
from tactful.service.schemas import (
    BatchIn,
    BatchOut,
    ContactOut,
    DecisionOut,
    ErrorOut,
    OutcomeIn,
    ProposalIn,
    Responses,
    SentIn,
    UnsubscribeOut,
)
from tactful.store.base import StoreError

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

ERRORS: Responses = {
    401: {"model": ErrorOut, "description": "No or unknown API key."},
    403: {"model": ErrorOut, "description": "The key lacks the scope."},
}


def _render(
    runtime: Runtime, proposal: ContactProposal, decision: Decision, replayed: bool
) -> DecisionOut:
    unsubscribe = None
    hold_expires = None
    if decision.verdict is Verdict.ALLOW:
        hold_expires = decision.at + timedelta(seconds=runtime.settings.hold_ttl_seconds)
        if proposal.channel == "email" and proposal.purpose != "transactional":
            url = runtime.link(
                proposal.customer_id, "unsubscribe", channel="email", purpose=proposal.purpose
            )
            unsubscribe = UnsubscribeOut(
                url=url,
                headers={
                    "List-Unsubscribe": f"<{url}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
                preferences=runtime.link(proposal.customer_id, "prefs"),
            )
    return DecisionOut.of(
        decision, replayed=replayed, hold_expires=hold_expires, unsubscribe=unsubscribe
    )


def decide_and_render(
    runtime: Runtime, proposal: ContactProposal, body: ProposalIn | None = None
) -> DecisionOut:
    """Decide (placing the hold) and render the answer. A `body` asking
    `on_defer: "queue"` keeps a defer in the queue (see routes/queue.py)."""
    # A proposal naming only `to` is decided for the customer holding that address.
    proposal = addressed(runtime.store, proposal)
    if body is not None and body.on_defer == "queue":
        return decide_or_queue(runtime, proposal, body.expires_at, _render)
    try:
        decision, replayed = runtime.decide(proposal)
    except StoreError as error:
        return unavailable(runtime, proposal, error)
    return _render(runtime, proposal, decision, replayed)


async def decide_and_render_soon(
    runtime: Runtime, proposal: ContactProposal, body: ProposalIn
) -> DecisionOut:
    """`decide_and_render` for `POST /v1/decisions` (the route and `fastpath` share it):
    decided with the proposals that arrive at the same moment, in one transaction
    (`Runtime.decide_soon`)."""
    if body.on_defer == "queue" or not proposal.customer_id:
        return await runtime.run_store(decide_and_render, runtime, proposal, body)
    try:
        decision, replayed = await runtime.decide_soon(proposal)
    except StoreError as error:
        return unavailable(runtime, proposal, error)
    return _render(runtime, proposal, decision, replayed)


@router.post(
    "",
    response_model=DecisionOut,
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "The store is unreachable."}},
    summary="Ask whether a contact may happen",
)
async def create_decision(body: ProposalIn, runtime: RuntimeDep, key: DecideKey) -> Response:
    """Decide a proposal: `allow` (a hold is placed: confirm with `/sent` or release with
    `/cancel`), `defer` (with `not_before`, the earliest time every rule allows it) or
    `deny`, always with reasons. A repeated `idempotency_key` returns the first answer.
    With `on_defer: "queue"` a defer is kept and decided again at `not_before` (see
    `/v1/queue`); the answer's `queued` says so."""
    out = await decide_and_render_soon(runtime, body.to_model(), body)
    # Serialized once here, rather than validated again against the response model.
    return Response(out.model_dump_json(), media_type="application/json")


@router.post(
    "/batch",
    response_model=BatchOut,
    responses={**ERRORS, 503: {"model": ErrorOut, "description": "The store is unreachable."}},
    summary="Decide several proposals; per customer, the highest priority goes first",
)
def create_batch(body: BatchIn, runtime: RuntimeDep, key: DecideKey) -> BatchOut:
    """Proposals for the same customer are decided in order of `priority` (highest first,
    then as listed), so the most valuable one gets a scarce slot. Answers come back in the
    order the proposals were sent. Unless a proposal names only `to` or asks to queue a
    defer, all are decided in one transaction."""
    proposals = [p.to_model() for p in body.proposals]
    order = priority_order(proposals)
    out: dict[int, DecisionOut] = {}
    if all(p.customer_id for p in proposals) and all(p.on_defer != "queue" for p in body.proposals):
        # Decided in that order in one transaction (one commit for them all).
        results = runtime.decide_many([proposals[i] for i in order])
        for i, result in zip(order, results, strict=True):
            if isinstance(result, StoreError):
                out[i] = unavailable(runtime, proposals[i], result)
            elif isinstance(result, Exception):
                raise result
            else:
                out[i] = _render(runtime, proposals[i], *result)
    else:
        # Addresses to resolve or defers to queue: one by one, as `POST /v1/decisions`.
        for i in order:
            out[i] = decide_and_render(runtime, proposals[i], body.proposals[i])
    return BatchOut(decisions=[out[i] for i in range(len(proposals))])


@router.post(
    "/{decision_id}/sent",
    response_model=ContactOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Confirm an allowed contact was made",
)
def mark_sent(
    decision_id: str, runtime: RuntimeDep, key: DecideKey, body: SentIn | None = None
) -> ContactOut:
    at = utc(body.at) if body and body.at else None
    contact = runtime.store.mark_sent(decision_id, at=at, now=runtime.clock())
    return ContactOut.of(contact)


@router.post(
    "/{decision_id}/cancel",
    response_model=ContactOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Release the hold of an allowed contact that will not be made",
)
def cancel(decision_id: str, runtime: RuntimeDep, key: DecideKey) -> ContactOut:
    return ContactOut.of(runtime.store.cancel(decision_id, now=runtime.clock()))


@router.post(
    "/{decision_id}/outcome",
    response_model=ContactOut,
    responses={**ERRORS, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    summary="Report what happened to a contact",
)
def outcome(decision_id: str, body: OutcomeIn, runtime: RuntimeDep, key: DecideKey) -> ContactOut:
    """delivered, answered, no_answer, voicemail, replied, declined, bounced, unsubscribed,
    complained. Unanswered calls feed back-off and pressure; answers and replies count as
    the customer engaging."""
    return ContactOut.of(runtime.record_outcome(decision_id, body.outcome))


@router.get(
    "/{decision_id}",
    response_model=DecisionOut,
    responses={**ERRORS, 404: {"model": ErrorOut}},
    summary="A past decision",
)
def get_decision(decision_id: str, runtime: RuntimeDep, key: DecideKey) -> DecisionOut:
    record = runtime.store.get_decision(decision_id)
    return DecisionOut.model_validate(
        {
            "decision_id": record.decision_id,
            "verdict": record.verdict,
            "not_before": record.not_before,
            "reasons": list(record.reasons),
            "policy": {"name": record.policy_name, "version": record.policy_version},
            "at": record.at,
        }
    )
