"""The customer's preference centre under `/p/{token}`: a signed, expiring link, no login.

The customer sees in plain language what tactful lets the company send them, and can pick
channels and a pace, snooze everything, ask for a call-back, or opt out of everything. Each
change goes into the same ledger as every other signal (an event, or the profile's
`preferences`), so it takes effect for the very next decision. The customer id comes only
from the verified token: a form can never name another customer. Plain HTML forms, no
JavaScript; each form carries a CSRF token bound to the link.
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from time import time_ns
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tactful.model import CustomerProfile, Event, EventKind
from tactful.rules.consent import consent_keys
from tactful.service.deps import RuntimeDep
from tactful.service.runtime import Runtime
from tactful.service.tokens import LinkToken, TokenError, verify
from tactful.state import CustomerState
from tactful.web.pages import render
from tactful.web.session import link_csrf
from tactful.web.timeline import zone_of

router = APIRouter(prefix="/p", tags=["preferences"], include_in_schema=False)

#: The channels a customer can pick (key, short name, in their words, channels covered).
CHOICES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("email", "Email", "Email", ("email",)),
    ("sms", "Text", "Text messages (SMS)", ("sms",)),
    ("call", "Calls", "Phone calls", ("call",)),
    ("push", "App", "Notifications from our app", ("push",)),
    ("onsite", "Chat", "Chat and messages while you use our website or app", ("in_app", "chat")),
    ("mail", "Post", "Letters by post", ("mail",)),
)
#: What a contact is about, in the customer's words.
TOPICS: tuple[tuple[str, str], ...] = (
    ("marketing", "News and offers"),
    ("sales", "Sales follow-ups"),
    ("service", "Service check-ins"),
)
PACES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "any": ("No limit of my own (the company's usual limits still apply)", None),
    "weekly": ("At most one message a week", {"count": 1, "per": "7d"}),
    "monthly": ("At most one message a month", {"count": 1, "per": "30d"}),
}
SNOOZES: dict[str, tuple[str, int]] = {
    "1w": ("One week", 7),
    "3w": ("Three weeks", 21),
    "3m": ("Three months", 91),
}
#: A snooze or call-back is for a time of day a person would expect: 09:00 their time.
WAKE = time(9, 0)
#: How far ahead a snooze or call-back may reach.
FURTHEST = timedelta(days=366)

HEADERS = {
    "Cache-Control": "no-store",
    # The link is the key: never send it on to another site.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


@dataclass(frozen=True, slots=True)
class Cell:
    """May the company use a channel for a topic: `yes`, `later` (paused) or `no`."""

    answer: Literal["yes", "later", "no"]
    why: str

    @property
    def word(self) -> str:
        return {"yes": "Yes", "later": "Not now", "no": "No"}[self.answer]


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _refused(error: str) -> HTMLResponse:
    return _html(render("prefs.html", error=error), 400)


def _channel_words(channels: list[str]) -> str:
    names = [label for _, _, label, covers in CHOICES if set(covers) & set(channels)]
    return ", ".join(names) if names else "no channel"


def _summary(
    state: CustomerState, paused_until: datetime | None, zone: ZoneInfo
) -> dict[str, dict[str, Cell]]:
    """For each channel and topic: may the company use it, and if not, why (plain words)."""
    profile = state.profile
    chosen = profile.preferences.get("channels")
    out: dict[str, dict[str, Cell]] = {}
    for key, _, _, covers in CHOICES:
        channel = covers[0]
        row: dict[str, Cell] = {}
        for purpose, _ in TOPICS:
            cell = Cell("yes", "")
            hit = state.optout_covering(channel, purpose)
            if hit is not None:
                ts, kind, _ = hit
                when = datetime.fromtimestamp(ts, UTC)
                verb = {"complained": "reported spam"}.get(kind, kind.replace("_", " "))
                cell = Cell("no", f"you {verb} on {when:%d %b %Y}")
            elif isinstance(chosen, list) and not set(covers) & set(chosen):
                cell = Cell("no", "not one of your channels")
            else:
                for k in consent_keys(channel, purpose):
                    if k in profile.consent:
                        if profile.consent[k] is False:
                            cell = Cell("no", "you did not give consent")
                        break
            if cell.answer == "yes" and paused_until is not None:
                local = paused_until.astimezone(zone)
                cell = Cell("later", f"paused until {local:%a} {local.day} {local:%b}")
            row[purpose] = cell
        out[key] = row
    return out


def _opted_out(state: CustomerState) -> bool:
    return (None, None) in state.derived.optouts


def _page(
    runtime: Runtime,
    token: str,
    link: LinkToken,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = runtime.clock()
    state = runtime.store.load_state(link.customer_id)
    zone = zone_of(state.profile)
    prefs = state.profile.preferences
    chosen = prefs.get("channels")
    picked = {
        key
        for key, _, _, covers in CHOICES
        if not isinstance(chosen, list) or set(covers) & set(chosen)
    }
    pace = next((k for k, (_, v) in PACES.items() if v and v == prefs.get("pace")), "any")
    snooze = state.derived.snooze
    snooze_until = (
        datetime.fromtimestamp(snooze[1], UTC) if snooze and snooze[1] > now.timestamp() else None
    )
    callback = state.derived.callback
    callback_at = (
        datetime.fromtimestamp(callback[1], UTC)
        if callback and callback[1] > now.timestamp()
        else None
    )
    today = now.astimezone(zone).date()
    body = render(
        "prefs.html",
        token=token,
        csrf=link_csrf(runtime.store.secret(), token),
        zone=zone,
        now=now,
        expires=link.expires,
        summary=_summary(state, snooze_until, zone),
        choices=CHOICES,
        topics=TOPICS,
        picked=picked,
        pace=pace,
        paces=PACES,
        snoozes={
            k: (label, _wake(today + timedelta(days=n), zone)) for k, (label, n) in SNOOZES.items()
        },
        snooze_until=snooze_until,
        callback_at=callback_at,
        opted_out=_opted_out(state),
        chosen_words=_channel_words(list(chosen)) if isinstance(chosen, list) else None,
        pace_words=PACES[pace][0] if pace != "any" else None,
        min_date=(today + timedelta(days=1)).isoformat(),
        max_date=(today + FURTHEST - timedelta(days=1)).isoformat(),
        today=today.isoformat(),
        done=done,
        error=error,
    )
    return _html(body, status)


def _wake(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, WAKE, zone).astimezone(UTC)


def _verified(runtime: Runtime, token: str) -> LinkToken:
    return verify(token, runtime.store.secret(), now=runtime.clock(), action="prefs")


def _checked(runtime: Runtime, token: str, csrf: str | None) -> LinkToken | HTMLResponse:
    """The link's token if it is valid and the form came from its page; else a refusal."""
    try:
        link = _verified(runtime, token)
    except TokenError as exc:
        return _refused(str(exc))
    if not csrf or not hmac.compare_digest(link_csrf(runtime.store.secret(), token), csrf):
        return _page(
            runtime,
            token,
            link,
            error="This form was not sent from your preferences page, so nothing was changed. "
            "Please make your choice again.",
            status=403,
        )
    return link


def _record(runtime: Runtime, link: LinkToken, kind: str, **props: Any) -> None:
    """One event in the ledger; durable when this returns."""
    now = runtime.clock()
    # Ids sort in arrival order, which the ledger uses for events of one kind at one instant.
    event_id = f"prefs:{kind}:{time_ns():020d}:{uuid.uuid4().hex[:12]}"
    event = Event(
        link.customer_id,
        kind,
        now,
        event_id,
        {"via": "preference-centre", **props},
    )
    runtime.store.add_events([event], received_at=now)
    runtime.metrics.events.labels("preferences").inc()


def _done(token: str, what: str) -> RedirectResponse:
    # Post/redirect/get: reloading the confirmation does not send the form again.
    return RedirectResponse(f"/p/{token}?done={what}", 303)


Csrf = Annotated[str | None, Form()]


@router.get("/{token}")
def preferences_page(
    token: str, runtime: RuntimeDep, done: Annotated[str | None, Query(max_length=20)] = None
) -> Response:
    try:
        link = _verified(runtime, token)
    except TokenError as exc:
        return _refused(str(exc))
    return _page(runtime, token, link, done=done)


@router.post("/{token}/channels")
def choose_channels(
    token: str,
    runtime: RuntimeDep,
    csrf: Csrf = None,
    channels: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 - FastAPI copies
    pace: Annotated[str, Form(max_length=20)] = "any",
) -> Response:
    link = _checked(runtime, token, csrf)
    if isinstance(link, Response):
        return link
    known = {key: covers for key, _, _, covers in CHOICES}
    picked = [c for c in channels if c in known]
    store = runtime.store
    profile = store.get_profile(link.customer_id) or CustomerProfile(link.customer_id)
    prefs = dict(profile.preferences)
    if set(picked) == set(known):
        prefs.pop("channels", None)  # every channel: no restriction of their own
    else:
        prefs["channels"] = sorted({ch for key in picked for ch in known[key]})
    rate = PACES.get(pace, PACES["any"])[1]
    if rate is None:
        prefs.pop("pace", None)
    else:
        prefs["pace"] = dict(rate)
    store.put_profile(replace(profile, preferences=prefs))
    return _done(token, "channels")


@router.post("/{token}/snooze")
def snooze(
    token: str,
    runtime: RuntimeDep,
    csrf: Csrf = None,
    length: Annotated[Literal["1w", "3w", "3m", "date", "cancel"], Form()] = "3w",
    until: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    link = _checked(runtime, token, csrf)
    if isinstance(link, Response):
        return link
    now = runtime.clock()
    zone = zone_of(runtime.store.load_state(link.customer_id).profile)
    today = now.astimezone(zone).date()
    if length == "cancel":
        _record(runtime, link, EventKind.SNOOZE_REQUESTED, until=now.isoformat(), cancelled=True)
        return _done(token, "resumed")
    if length == "date":
        try:
            day = date.fromisoformat(until)
        except ValueError:
            return _page(runtime, token, link, error="Choose the date to pause until.", status=400)
        if not today < day <= today + FURTHEST:
            return _page(
                runtime,
                token,
                link,
                error="Choose a date after today and within a year.",
                status=400,
            )
    else:
        day = today + timedelta(days=SNOOZES[length][1])
    _record(runtime, link, EventKind.SNOOZE_REQUESTED, until=_wake(day, zone).isoformat())
    return _done(token, "snoozed")


@router.post("/{token}/callback")
def callback(
    token: str,
    runtime: RuntimeDep,
    csrf: Csrf = None,
    day: Annotated[str, Form(max_length=10)] = "",
    at: Annotated[str, Form(max_length=5)] = "",
    cancel: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    link = _checked(runtime, token, csrf)
    if isinstance(link, Response):
        return link
    if cancel:
        _record(runtime, link, EventKind.CALLBACK_REQUESTED, cancelled=True, channel="call")
        return _done(token, "no-callback")
    now = runtime.clock()
    zone = zone_of(runtime.store.load_state(link.customer_id).profile)
    try:
        when = datetime.combine(date.fromisoformat(day), time.fromisoformat(at), zone)
    except ValueError:
        return _page(
            runtime, token, link, error="Choose a date and a time for the call.", status=400
        )
    if not now < when <= now + FURTHEST:
        return _page(
            runtime, token, link, error="Choose a time in the future, within a year.", status=400
        )
    _record(
        runtime,
        link,
        EventKind.CALLBACK_REQUESTED,
        at=when.astimezone(UTC).isoformat(),
        channel="call",
    )
    return _done(token, "callback")


@router.post("/{token}/opt-out")
def opt_out(token: str, runtime: RuntimeDep, csrf: Csrf = None) -> Response:
    link = _checked(runtime, token, csrf)
    if isinstance(link, Response):
        return link
    _record(runtime, link, EventKind.OPTED_OUT)
    return _done(token, "opted-out")


@router.post("/{token}/opt-in")
def opt_in(token: str, runtime: RuntimeDep, csrf: Csrf = None) -> Response:
    link = _checked(runtime, token, csrf)
    if isinstance(link, Response):
        return link
    _record(runtime, link, EventKind.OPTED_IN)
    return _done(token, "opted-in")
