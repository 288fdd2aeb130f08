"""The dashboard's Deliveries page (`/ui/deliveries`): webhook subscriptions and the
deliveries made to them, each with its attempts, and a button to send one again (admin).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse, Response

from tactful.service.deps import RuntimeDep
from tactful.store.base import Conflict, NotFound
from tactful.store.delivery import delivery_store
from tactful.web.dashboard import PageRoute, PosterDep, Refused, ViewerDep, _page

router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

SHOWN = 100


@router.get("/deliveries")
def deliveries_page(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    state: Literal["", "pending", "delivered", "dead"] = "",
    webhook: Annotated[str, Query(max_length=64)] = "",
    sent: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    ds = delivery_store(runtime.store)
    found = ds.list_deliveries(state=state or None, webhook_id=webhook or None, limit=SHOWN)
    hooks = ds.list_webhooks(include_removed=True)
    return _page(
        runtime,
        viewer,
        "ui_deliveries.html",
        section="deliveries",
        deliveries=found,
        webhooks=hooks,
        urls={h.id: h.url for h in hooks},
        counts=ds.counts(),
        filters={"state": state, "webhook": webhook},
        sent=sent,
        shown=SHOWN,
    )


@router.post("/deliveries/redeliver")
def redeliver(
    runtime: RuntimeDep,
    viewer: PosterDep,
    delivery_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Send a delivery again now (admin)."""
    if not viewer.admin:
        raise Refused(
            403,
            "Sending again needs an admin key",
            "You are signed in with a key that can read deliveries, not send them again. "
            "Nothing was changed.",
        )
    try:
        delivery_store(runtime.store).redeliver(delivery_id, now=runtime.clock())
    except NotFound:
        raise Refused(404, "No such delivery", f"No delivery has the id {delivery_id!r}.") from None
    except Conflict as exc:
        raise Refused(409, "Cannot send it again", str(exc)) from None
    return RedirectResponse(f"/ui/deliveries?sent={delivery_id}", 303)
