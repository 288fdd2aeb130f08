"""Customers: read what tactful knows, change the profile, erase on request, ask when next."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from tactful.compliance import optout_audit
from tactful.engine import next_allowed, pressure
from tactful.model import ContactProposal, CustomerProfile, Verdict, from_ts
from tactful.service.deps import AdminKey, ReadKey, RuntimeDep
from tactful.service.errors import ApiError
from tactful.service.identity import address_check
from tactful.service.runtime import ERASED
from tactful.service.schemas import (
    NAME,
    ContactOut,
    CustomerOut,
    ErrorOut,
    IdentityOut,
    MergeEntryOut,
    MergeIn,
    NextOut,
    OptOutOut,
    ProfileOut,
    ProfilePatch,
    ReasonOut,
    Responses,
)
from tactful.store.base import Identity

router = APIRouter(prefix="/v1/customers", tags=["customers"])
CustomerId = Annotated[str, Path(min_length=1, max_length=200)]
ERRORS: Responses = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


@router.get(
    "/{customer_id}", response_model=CustomerOut, responses={**ERRORS, 404: {"model": ErrorOut}}
)
def get_customer(customer_id: CustomerId, runtime: RuntimeDep, key: ReadKey) -> CustomerOut:
    """Profile, opt-outs, snooze, current pressure and the contact ledger of a customer.
    `erased`: the id was erased on request and stays on the suppression list (every contact
    to it is denied); what is shown was recorded after the erasure."""
    store = runtime.store
    state = store.load_state(customer_id)
    erased = store.suppressed(customer_id)
    profile = store.get_profile(customer_id)
    if erased and profile is not None and profile == CustomerProfile(profile.customer_id):
        # The bare row a denied decision for the erased id left in a ledger written before
        # such decisions were logged under the id's keyed hash (`sql.erased_alias`): no data.
        profile = None
    if profile is None and not state.events and not state.contacts:
        if erased:
            raise ApiError(
                404,
                "not_found",
                f"customer {customer_id!r} was erased on request: nothing is kept but a keyed "
                "hash of the id, on the suppression list",
            )
        raise ApiError(404, "not_found", f"no customer {customer_id!r}")
    now = runtime.clock()
    level = pressure(state, runtime.policy, now)
    opt_outs = [
        {"channel": ch, "purpose": pu, "since": from_ts(ts), "by": kind}
        for (ch, pu), (ts, kind) in state.derived.optouts.items()
    ]
    snooze = state.derived.snooze
    contacts = [
        ContactOut(
            contact_id=c.contact_id,
            customer_id=customer_id,
            channel=c.channel,
            purpose=c.purpose,
            at=from_ts(c.ts),
            status=str(c.status),
            outcome=c.outcome,
            hold_expires=from_ts(c.hold_expires) if c.hold_expires else None,
        )
        for c in state.contacts
    ]
    ids = runtime.store.identity(customer_id)
    return CustomerOut(
        canonical_id=ids.canonical_id,
        aliases=list(ids.aliases),
        profile=ProfileOut.of(state.profile),
        events=len(state.events),
        contacts=contacts,
        opt_outs=opt_outs,
        pressure=None if level is None else round(level, 2),
        snoozed_until=from_ts(snooze[1]) if snooze and snooze[1] > now.timestamp() else None,
        erased=erased,
    )


@router.patch("/{customer_id}", response_model=ProfileOut, responses=ERRORS)
def patch_customer(
    customer_id: CustomerId, body: ProfilePatch, runtime: RuntimeDep, key: AdminKey
) -> ProfileOut:
    """Change profile fields (time zone, country, phones, emails, consent, preferences);
    fields left out stay as they are. Creates the customer if new."""
    current = runtime.store.get_profile(customer_id) or CustomerProfile(customer_id)
    updated = body.apply(current)
    runtime.store.put_profile(updated)
    return ProfileOut.of(updated)


@router.delete(
    "/{customer_id}",
    status_code=204,
    responses=ERRORS,
)
def erase_customer(customer_id: CustomerId, runtime: RuntimeDep, key: AdminKey) -> Response:
    """Erase the customer's profile, events, contacts and decisions. A keyed hash of the id
    (and of their phones and emails) stays on the suppression list, so a later campaign to
    the same id is denied. Idempotent: erasing an unknown id still records the suppression."""
    runtime.store.erase(customer_id, now=runtime.clock())
    return Response(status_code=204)


@router.get("/{customer_id}/next", response_model=NextOut, responses=ERRORS)
def next_time(
    customer_id: CustomerId,
    runtime: RuntimeDep,
    key: ReadKey,
    channel: Annotated[str, Query(pattern=NAME)],
    purpose: Annotated[str, Query(pattern=NAME)],
) -> NextOut:
    """The earliest time a contact on `channel` for `purpose` would be allowed, and why not
    sooner. `next_allowed` is null when the answer is no for the foreseeable future."""
    state = runtime.store.load_state(customer_id)
    now = runtime.clock()
    if runtime.store.suppressed(customer_id):
        return NextOut(
            customer_id=customer_id,
            channel=channel,
            purpose=purpose,
            next_allowed=None,
            verdict_now="deny",
            reasons=[ReasonOut(**ERASED.as_dict())],
        )
    when, decision = next_allowed(state, channel, purpose, runtime.policy, now)
    # As a decision would be answered: the suppression list by address too.
    probe = ContactProposal(customer_id, channel, purpose)
    decision = address_check(decision, probe, runtime.store.address_hits(customer_id))
    if decision.verdict is Verdict.DENY:
        when = None
    return NextOut(
        customer_id=customer_id,
        channel=channel,
        purpose=purpose,
        next_allowed=when,
        verdict_now=decision.verdict.value,
        reasons=[ReasonOut(**r.as_dict()) for r in decision.reasons],
    )


def _identity_out(customer_id: str, ids: Identity, merged: tuple[str, ...] = ()) -> IdentityOut:
    return IdentityOut(
        customer_id=customer_id,
        canonical_id=ids.canonical_id,
        aliases=list(ids.aliases),
        merged=list(merged),
        merges=[MergeEntryOut.model_validate(m.as_dict()) for m in ids.merges],
    )


@router.post(
    "/{customer_id}/merge",
    response_model=IdentityOut,
    responses={**ERRORS, 422: {"model": ErrorOut}},
    summary="Join other ids of the same customer (CRM de-duplication)",
)
def merge_customers(
    customer_id: CustomerId, body: MergeIn, runtime: RuntimeDep, key: AdminKey
) -> IdentityOut:
    """Join `ids` with this one: from now on every id of the group decides, counts caps and
    honours opt-outs as one customer, whose canonical id is the least of them (ids known
    only by an address come last). Their events, contacts and decisions fold together by
    event time; the profiles merge (opt-outs and refused consent always carry over).
    Idempotent: ids merged already change nothing. Logged in the identity log
    (`merges`, also at `GET /v1/customers/{id}/identity`). Needs the `admin` scope: a merge
    cannot be undone."""
    now = runtime.clock()
    result = runtime.store.merge(
        [customer_id, *body.ids],
        at=body.at or now,
        via="api",
        reference=body.reference or f"key:{key.key_id}",
        now=now,
    )
    return _identity_out(customer_id, runtime.store.identity(customer_id), result.merged)


@router.get(
    "/{customer_id}/identity",
    response_model=IdentityOut,
    responses=ERRORS,
    summary="The ids a customer is known by, and the merges that joined them",
)
def customer_identity(customer_id: CustomerId, runtime: RuntimeDep, key: ReadKey) -> IdentityOut:
    """The canonical id this id resolves to, the other ids merged into it, and the identity
    log of those merges (Segment alias and identify, the merge API, and customers known
    only by an address that a profile later claimed)."""
    return _identity_out(customer_id, runtime.store.identity(customer_id))


@router.get(
    "/{customer_id}/optouts",
    response_model=list[OptOutOut],
    responses=ERRORS,
    summary="Each opt-out, its legal deadlines, and anything that followed it",
)
def optout_audit_view(
    customer_id: CustomerId, runtime: RuntimeDep, key: ReadKey
) -> list[OptOutOut]:
    """For every opt-out, unsubscribe, complaint or STOP-style reply: when it was received,
    what it covered, the CAN-SPAM / CASL / FCC outer deadlines (10 business days) where
    they apply, and every non-exempt contact that followed it. tactful honours opt-outs at
    once, so `followed_by` is empty unless something bypassed it."""
    state = runtime.store.load_state(customer_id)
    return [OptOutOut.model_validate(f.as_dict()) for f in optout_audit(state)]
