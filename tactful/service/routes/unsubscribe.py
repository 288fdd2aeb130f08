"""One-click unsubscribe (RFC 8058) under signed, expiring links; no login, no cookies.

GET shows a confirmation page and changes nothing (mail scanners follow links); POST, as
a mail client's one-click `List-Unsubscribe=One-Click` or the page's button, unsubscribes
at once and answers only after the opt-out is durable.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from tactful.model import Event, EventKind
from tactful.service.deps import RuntimeDep
from tactful.service.tokens import LinkToken, TokenError, verify
from tactful.web.pages import render

router = APIRouter(tags=["unsubscribe"])


def _what(token: LinkToken) -> str:
    purpose = {"marketing": "marketing", "sales": "sales"}.get(token.purpose or "", token.purpose)
    channel = {"email": "emails", "sms": "text messages", "call": "calls"}.get(
        token.channel or "", "messages"
    )
    return f"{purpose} {channel}" if purpose else channel


@router.get("/u/{token}", response_class=HTMLResponse, summary="Unsubscribe confirmation page")
def unsubscribe_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    try:
        parsed = verify(token, runtime.store.secret(), now=runtime.clock(), action="unsubscribe")
    except TokenError as exc:
        return HTMLResponse(render("unsubscribe.html", error=str(exc)), status_code=400)
    return HTMLResponse(render("unsubscribe.html", what=_what(parsed)))


@router.post("/u/{token}", response_class=HTMLResponse, summary="One-click unsubscribe (RFC 8058)")
def unsubscribe(token: str, runtime: RuntimeDep) -> HTMLResponse:
    now = runtime.clock()
    try:
        parsed = verify(token, runtime.store.secret(), now=now, action="unsubscribe")
    except TokenError as exc:
        return HTMLResponse(render("unsubscribe.html", error=str(exc)), status_code=400)
    props: dict[str, str] = {"via": "one-click"}
    if parsed.channel:
        props["channel"] = parsed.channel
    if parsed.purpose:
        props["purpose"] = parsed.purpose
    # One event per link: clicking twice records one unsubscribe.
    event_id = "unsub:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    event = Event(parsed.customer_id, EventKind.UNSUBSCRIBED, now, event_id, props)
    runtime.store.add_events([event], received_at=now)
    runtime.metrics.events.labels("unsubscribe").inc()
    return HTMLResponse(render("unsubscribe.html", done=True, what=_what(parsed)))
