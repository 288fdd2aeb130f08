"""Identity in the service: suppression by address as a decision, and proposals addressed
by phone number or email alone (cold outreach).

**Why here.** The engine folds one customer's ledger; the suppression list by address
spans customers (another team's record holding a number that said STOP). The store finds
the entries matching the customer's addresses and the proposal's `to` inside its locked
decide transaction and hands them, with the engine's decision, to `address_check`, which
turns a covered contact into a deny with the rule `address-suppressed`. The store then
writes that decision to the audit log like any other, in the same transaction. A deny
that already comes from the customer's own opt-out (a `consent` reason) stays as the
engine gave it, and a global suppression leaves transactional contact alone, as the
`consent` rule does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tactful.addresses import parse_address
from tactful.model import ContactProposal, Decision, Reason, Verdict
from tactful.store.base import AddressHit, Store

#: The rule id of a denial by the suppression list by address.
ADDRESS_SUPPRESSED = "address-suppressed"
#: Purposes a global suppression leaves alone (as the `consent` rule's default).
GLOBAL_EXEMPT_PURPOSES = ("transactional",)

_KIND_WORDS = {"phone": "phone number", "email": "email address"}


def covering(hits: Sequence[AddressHit], channel: str, purpose: str) -> list[AddressHit]:
    """The entries that cover a contact on `channel` for `purpose`, earliest first."""
    found = [
        h
        for h in hits
        if h.covers(channel, purpose)
        and not (h.channel is None and h.purpose is None and purpose in GLOBAL_EXEMPT_PURPOSES)
    ]
    return sorted(found, key=lambda h: (h.at, h.kind, h.channel or "", h.purpose or ""))


def suppression_reason(hit: AddressHit) -> Reason:
    """Why a contact is denied by an address entry: the scope and when, never the address."""
    what = _KIND_WORDS.get(hit.kind, hit.kind)
    if hit.reason == "erased":
        message = (
            f"This {what} belonged to a customer erased on request "
            f"({hit.at.date().isoformat()}); every record holding it stays suppressed."
        )
    else:
        scope = " ".join(x for x in (hit.purpose, hit.channel) if x) or "all contact"
        message = (
            f"This {what} was {hit.reason.replace('_', ' ')} from {scope} on "
            f"{hit.at.date().isoformat()}; every record holding it stays suppressed."
        )
    return Reason(rule=ADDRESS_SUPPRESSED, kind="consent", message=message)


def address_check(
    decision: Decision, proposal: ContactProposal, hits: Sequence[AddressHit]
) -> Decision:
    """The final decision, given the engine's and the address entries that match."""
    found = covering(hits, proposal.channel, proposal.purpose)
    if not found:
        return decision
    if decision.verdict is Verdict.DENY and any(r.kind == "consent" for r in decision.reasons):
        return decision
    return decision._replace(
        verdict=Verdict.DENY,
        reasons=(suppression_reason(found[0]),),
        not_before=None,
    )


def addressed(store: Store, proposal: ContactProposal) -> ContactProposal:
    """A proposal with its customer: as named, or, when only `to` is given, the customer
    holding that address, or one known only by the address (its id is derived from the
    address's keyed hash; its zones and caps are the address's). Conflict (409) when
    several customers hold the address."""
    if proposal.customer_id or not proposal.to:
        return proposal
    kind, value = parse_address(proposal.to)
    customer_id = store.customer_for_address(kind, value, create=True)
    assert customer_id is not None  # create=True always gives one
    return replace(proposal, customer_id=customer_id)


def customers_for(store: Store, kind: str, value: str) -> list[str]:
    """Every customer an inbound signal from this address belongs to: each (canonical)
    record holding it, or one known only by the address if nobody does, so that an
    opt-out from an unknown number is kept, not dropped."""
    holders = store.customers_with_address(kind, value)
    if holders:
        return holders
    customer_id = store.customer_for_address(kind, value, create=True)
    return [customer_id] if customer_id is not None else []
