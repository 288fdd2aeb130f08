"""The operations dashboard under `/ui`: overview, customers, policy, audit.

Sign in with an API key of scope `read` (policy adoption needs `admin`); see
`tactful.web.session` for the cookie and CSRF scheme. Routes stay thin: the numbers come
from `overview`, `timeline` and `whatif`, the HTML from the templates. These are pages for
people, not API operations: they are left out of the OpenAPI document.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from tactful.model import CHANNELS, PURPOSES
from tactful.policy.document import Policy
from tactful.policy.errors import PolicyError
from tactful.service.deps import RuntimeDep
from tactful.service.routes.audit import to_csv
from tactful.service.runtime import Runtime
from tactful.store.base import AuditQuery, DecisionRecord, PolicyVersion
from tactful.web import charts, overview, timeline, whatif
from tactful.web.pages import render
from tactful.web.session import (
    DASHBOARD_SCOPES,
    SESSION_COOKIE,
    SESSION_TTL,
    SIGNIN_COOKIE,
    SIGNIN_TTL,
    Viewer,
    csrf_token,
    csrf_valid,
    issue,
    read,
    read_signin_nonce,
    signin_nonce,
)

STATIC = Path(__file__).parent / "static"
#: Audit rows per page on screen, and at most in one CSV export.
AUDIT_PAGE = 100
CSV_CAP = 10_000
#: Customer ids scanned by a search that is not an exact id.
SEARCH_SCAN = 5_000
SEARCH_SHOWN = 50

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Plotly adds <style> elements at run time; scripts come only from this server.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


class SignInNeeded(Exception):
    """No valid session: a page asks the person to sign in."""


class Refused(Exception):
    """A request the person may not make (bad CSRF token, scope lacking)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


def _page_for(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInNeeded):
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/sign-in?next={quote(target, safe='')}", 303)
        return _html(
            render(
                "ui_error.html",
                title="Please sign in",
                message="Your session has ended or was never started; nothing was changed. "
                "Sign in and try again.",
                viewer=None,
            ),
            401,
        )
    assert isinstance(exc, Refused)
    return _html(
        render("ui_error.html", title=exc.title, message=exc.message, viewer=None), exc.status
    )


class PageRoute(APIRoute):
    """Routes whose refusals are pages for people, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except (SignInNeeded, Refused) as exc:
                return _page_for(request, exc)

        return run


router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


# -- who is asking ---------------------------------------------------------------------------


def get_viewer(request: Request, runtime: RuntimeDep) -> Viewer:
    """The signed-in person, with their key as the store has it now."""
    store = runtime.store
    session = read(request.cookies.get(SESSION_COOKIE), store.secret(), now=runtime.clock())
    if session is None:
        raise SignInNeeded()
    key = next((k for k in store.list_keys() if k.key_id == session.key_id), None)
    if key is None or key.revoked or not key.scopes & DASHBOARD_SCOPES:
        raise SignInNeeded()
    return Viewer(session, key)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def get_poster(
    viewer: ViewerDep, runtime: RuntimeDep, csrf: Annotated[str | None, Form()] = None
) -> Viewer:
    """The signed-in person sending a form that this dashboard rendered for them."""
    if not csrf_valid(runtime.store.secret(), viewer.session.sid, csrf):
        raise Refused(
            403,
            "This form has expired",
            "The form was not sent from this session (its security token is missing or "
            "does not match). Nothing was changed. Reload the page and try again.",
        )
    return viewer


PosterDep = Annotated[Viewer, Depends(get_poster)]


def _page(
    runtime: Runtime, viewer: Viewer, template: str, status: int = 200, **ctx: Any
) -> Response:
    csrf = csrf_token(runtime.store.secret(), viewer.session.sid)
    return _html(render(template, viewer=viewer, csrf=csrf, **ctx), status)


# -- sign in and out -------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a dashboard path on this server (no open redirect)."""
    if (
        not target
        or not target.startswith("/ui")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
    ):
        return "/ui"
    return target


def _signin_page(runtime: Runtime, next_: str, error: str | None, status: int) -> Response:
    secret = runtime.store.secret()
    cookie = signin_nonce(secret, now=runtime.clock())
    nonce = read_signin_nonce(cookie, secret, now=runtime.clock())
    assert nonce is not None
    body = render(
        "ui_signin.html", viewer=None, next=next_, error=error, csrf=csrf_token(secret, nonce)
    )
    response = _html(body, status)
    response.set_cookie(
        SIGNIN_COOKIE,
        cookie,
        max_age=int(SIGNIN_TTL.total_seconds()),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=runtime.settings.base_url.startswith("https://"),
    )
    return response


@router.get("/sign-in")
def sign_in_page(runtime: RuntimeDep, next: str | None = None) -> Response:
    return _signin_page(runtime, _safe_next(next), None, 200)


@router.post("/sign-in")
def sign_in(
    request: Request,
    runtime: RuntimeDep,
    key: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str | None, Form()] = None,
    next: Annotated[str | None, Form()] = None,
) -> Response:
    store = runtime.store
    now = runtime.clock()
    target = _safe_next(next)
    nonce = read_signin_nonce(request.cookies.get(SIGNIN_COOKIE), store.secret(), now=now)
    if nonce is None or not csrf_valid(store.secret(), nonce, csrf):
        return _signin_page(runtime, target, "The sign-in form expired. Paste your key again.", 403)
    found = store.check_key(key.strip()) if key.strip() else None
    if found is None:
        return _signin_page(runtime, target, "This key is not valid (unknown or revoked).", 401)
    if not found.scopes & DASHBOARD_SCOPES:
        scopes = ", ".join(sorted(found.scopes))
        return _signin_page(
            runtime,
            target,
            f"This key has the scopes {scopes}; the dashboard needs `read` (or `admin`).",
            403,
        )
    cookie, _ = issue(found, store.secret(), now=now)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=runtime.settings.base_url.startswith("https://"),
    )
    response.delete_cookie(SIGNIN_COOKIE, path="/ui")
    return response


@router.post("/sign-out")
def sign_out(viewer: PosterDep) -> Response:
    response = RedirectResponse("/ui/sign-in", 303)
    response.delete_cookie(SESSION_COOKIE, path="/ui", httponly=True, samesite="strict")
    return response


# -- static files ----------------------------------------------------------------------------

_ASSETS: dict[str, tuple[Callable[[], Path], str]] = {
    "plotly.min.js": (charts.plotly_js, "text/javascript"),
    "charts.js": (lambda: STATIC / "charts.js", "text/javascript"),
    "dashboard.css": (lambda: STATIC / "dashboard.css", "text/css"),
    "favicon.svg": (lambda: STATIC / "favicon.svg", "image/svg+xml"),
}


@router.get("/static/{name}")
def static(name: str, request: Request) -> Response:
    """Scripts and styles, served from the package (plotly.js from the plotly package)."""
    asset = _ASSETS.get(name)
    if asset is None:
        return Response("not found", 404, media_type="text/plain")
    path = asset[0]()
    stat = path.stat()
    etag = (
        '"'
        + hashlib.sha256(f"{stat.st_size}-{stat.st_mtime_ns}-{name}".encode()).hexdigest()[:20]
        + '"'
    )
    headers = {
        "Cache-Control": "public, max-age=86400",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=asset[1], headers=headers)


# -- overview --------------------------------------------------------------------------------


@router.get("")
def overview_page(
    runtime: RuntimeDep, viewer: ViewerDep, days: Annotated[int, Query(ge=1, le=90)] = 30
) -> Response:
    view = overview.build(runtime.store, runtime.policy, runtime.clock(), days=days)
    top = view.rules[:15]
    figures = {
        "verdicts": charts.embed(charts.verdicts_by_day(view.day_labels, view.verdicts)),
        "rules": charts.embed(
            charts.rules_fired(
                [r.rule for r in top], [r.deferred for r in top], [r.denied for r in top]
            )
        ),
        "contacts": charts.embed(charts.contacts_by_channel(view.channels, view.teams)),
        "pressure": charts.embed(
            charts.pressure_histogram([p for _, p in view.pressures], view.budget)
        ),
        "suppressions": charts.embed(
            charts.suppressions_by_day(view.day_labels, view.suppressions)
        ),
    }
    return _page(
        runtime,
        viewer,
        "ui_overview.html",
        view=view,
        figures=figures,
        section="overview",
        plots=True,
        caps={"decisions": overview.DECISION_CAP, "customers": overview.CUSTOMER_CAP},
    )


# -- customers -------------------------------------------------------------------------------


@router.get("/customers")
def customers_page(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Find a customer: an exact id opens the customer; otherwise ids containing the text."""
    store = runtime.store
    q = q.strip()
    if q and (store.get_profile(q) is not None or store.audit(AuditQuery(customer_id=q, limit=1))):
        return RedirectResponse(f"/ui/customer?id={quote(q, safe='')}", 303)
    matches: list[str] = []
    scanned = 0
    after: str | None = None
    needle = q.lower()
    while scanned < SEARCH_SCAN and len(matches) < SEARCH_SHOWN:
        ids = store.list_customers(limit=500, after=after)
        if not ids:
            break
        scanned += len(ids)
        after = ids[-1]
        matches += [c for c in ids if needle in c.lower()][: SEARCH_SHOWN - len(matches)]
    recent: list[str] = []
    if not q:
        for r in store.audit(AuditQuery(limit=200)):
            if r.customer_id not in recent:
                recent.append(r.customer_id)
    return _page(
        runtime,
        viewer,
        "ui_customers.html",
        q=q,
        matches=matches,
        recent=recent[:20],
        scanned=scanned,
        section="customers",
        limits={"scan": SEARCH_SCAN, "shown": SEARCH_SHOWN},
    )


@router.get("/customer")
def customer_page(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    id: Annotated[str, Query(min_length=1, max_length=200)],
) -> Response:
    now = runtime.clock()
    view = timeline.build(runtime.store, runtime.policy, id, now)
    figure = None
    if view.rows:

        def local(when: datetime) -> datetime:
            # plotly has no time zones: the axis shows the customer's wall time, as the
            # table beside it does.
            return when.astimezone(view.zone).replace(tzinfo=None)

        points = [
            {
                "when": local(r.when),
                "lane": r.lane,
                "verdict": r.verdict,
                "hover": r.hover(view.zone),
                "until": local(r.until) if r.until else None,
            }
            for r in view.rows
        ]
        figure = charts.embed(charts.timeline(points, view.lanes, local(now)))
    return _page(
        runtime,
        viewer,
        "ui_customer.html",
        status=200 if view.exists else 404,
        view=view,
        figure=figure,
        plots=figure is not None,
        section="customers",
        purposes=timeline.NEXT_PURPOSES,
    )


# -- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionView:
    version: PolicyVersion
    diff: list[str]
    added: int
    removed: int


def _history(runtime: Runtime) -> list[VersionView]:
    versions = runtime.store.policy_history()
    out = []
    for i, v in enumerate(versions):
        previous = versions[i + 1].text if i + 1 < len(versions) else ""
        diff = list(
            difflib.unified_diff(
                previous.splitlines(), v.text.splitlines(), "before", "after", lineterm="", n=2
            )
        )[2:]
        added = sum(1 for line in diff if line.startswith("+"))
        removed = sum(1 for line in diff if line.startswith("-"))
        out.append(VersionView(v, diff, added, removed))
    return out


def _excerpts(text: str, error: PolicyError) -> list[dict[str, Any]]:
    """Each problem with the draft's lines around it, so the person sees where."""
    lines = text.splitlines()
    out = []
    for line, field, message in error.problems:
        context = []
        if line:
            for n in range(max(1, line - 2), min(len(lines), line + 2) + 1):
                context.append((n, lines[n - 1], n == line))
        out.append({"line": line, "field": field, "message": message, "context": context})
    return out


def _line_of(text: str, key: str) -> int | None:
    """The line of a top-level key in a policy's YAML."""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(f"{key}:"):
            return n
    return None


def _policy_page(
    runtime: Runtime, viewer: Viewer, *, draft: str | None = None, status: int = 200, **ctx: Any
) -> Response:
    return _page(
        runtime,
        viewer,
        "ui_policy.html",
        status=status,
        policy=runtime.policy,
        draft=runtime.policy.text if draft is None else draft,
        history=_history(runtime),
        section="policy",
        max_days=whatif.MAX_DAYS,
        max_decisions=whatif.MAX_DECISIONS,
        **ctx,
    )


@router.get("/policy")
def policy_page(runtime: RuntimeDep, viewer: ViewerDep, adopted: str | None = None) -> Response:
    return _policy_page(runtime, viewer, adopted=adopted)


@router.post("/policy")
def policy_action(
    runtime: RuntimeDep,
    viewer: PosterDep,
    text: Annotated[str, Form(max_length=1_000_000)] = "",
    action: Annotated[Literal["validate", "whatif", "adopt"], Form()] = "validate",
    days: Annotated[int, Form(ge=1, le=whatif.MAX_DAYS)] = 7,
) -> Response:
    """Validate a draft, run it over the last days, or adopt it (admin)."""
    text = text.replace("\r\n", "\n")
    if action == "adopt" and not viewer.admin:
        raise Refused(
            403,
            "Adopting a policy needs an admin key",
            "You are signed in with a key that can read and try policies, not adopt them. "
            "Nothing was changed. Ask someone with an admin key, or sign in with one.",
        )
    try:
        draft = Policy.from_text(text, "draft")
    except PolicyError as exc:
        return _policy_page(
            runtime, viewer, draft=text, status=422, errors=_excerpts(text, exc), action=action
        )
    if action == "adopt":
        active = runtime.policy
        if (draft.name, draft.version) == (active.name, active.version) and text != active.text:
            # A changed text under the same version would make the history ambiguous.
            same = PolicyError(
                "draft",
                [
                    (
                        _line_of(text, "version"),
                        "version",
                        f"the active policy is already {active.name} version {active.version}: "
                        "give the changed draft a new version",
                    )
                ],
            )
            return _policy_page(
                runtime, viewer, draft=text, status=422, errors=_excerpts(text, same), action=action
            )
        adopted = runtime.adopt(text, author=viewer.name, file="draft")
        return RedirectResponse(
            f"/ui/policy?adopted={quote(adopted.name + ' v' + adopted.version)}", 303
        )
    result = None
    if action == "whatif":
        result = whatif.run(runtime.store, runtime.policy, draft, runtime.clock(), days=days)
    return _policy_page(
        runtime, viewer, draft=text, valid=draft, whatif=result, days=days, action=action
    )


# -- audit -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilters:
    customer_id: str | None
    channel: str | None
    purpose: str | None
    rule: str | None
    verdict: str | None
    since: str | None
    until: str | None

    def query(self, limit: int, before: tuple[datetime, str] | None = None) -> AuditQuery:
        return AuditQuery(
            customer_id=self.customer_id,
            channel=self.channel,
            purpose=self.purpose,
            verdict=self.verdict,
            rule=self.rule,
            since=_day_start(self.since),
            until=_day_start(self.until, plus=1),
            limit=limit,
            before=before,
        )

    def params(self) -> dict[str, str | None]:
        return {
            "customer_id": self.customer_id,
            "channel": self.channel,
            "purpose": self.purpose,
            "rule": self.rule,
            "verdict": self.verdict,
            "since": self.since,
            "until": self.until,
        }


def _day_start(day: str | None, plus: int = 0) -> datetime | None:
    if not day:
        return None
    try:
        d = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return d + timedelta(days=plus)


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value else None


def get_filters(
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    purpose: Annotated[str | None, Query(max_length=40)] = None,
    rule: Annotated[str | None, Query(max_length=200)] = None,
    verdict: Annotated[str | None, Query(max_length=10)] = None,
    since: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (UTC)")] = None,
    until: Annotated[str | None, Query(max_length=10, description="YYYY-MM-DD (UTC)")] = None,
) -> AuditFilters:
    return AuditFilters(
        _blank(customer_id),
        _blank(channel),
        _blank(purpose),
        _blank(rule),
        verdict if verdict in ("allow", "defer", "deny") else None,
        since if _day_start(since) else None,
        until if _day_start(until) else None,
    )


FiltersDep = Annotated[AuditFilters, Depends(get_filters)]


@router.get("/audit")
def audit_page(
    runtime: RuntimeDep,
    viewer: ViewerDep,
    filters: FiltersDep,
    before: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    cursor = None
    if before:
        stamp, _, did = before.partition("|")
        try:
            cursor = (datetime.fromisoformat(stamp).astimezone(UTC), did)
        except ValueError:
            cursor = None
    records = runtime.store.audit(filters.query(AUDIT_PAGE, cursor))
    nxt = None
    if len(records) == AUDIT_PAGE:
        nxt = f"{records[-1].decided_at.isoformat()}|{records[-1].decision_id}"
    return _page(
        runtime,
        viewer,
        "ui_audit.html",
        records=records,
        filters=filters,
        params=filters.params(),
        next_cursor=nxt,
        first_page=cursor is None,
        channels=CHANNELS,
        purposes=PURPOSES,
        rules=[r.id for r in runtime.policy.rules],
        section="audit",
        csv_cap=CSV_CAP,
        page_size=AUDIT_PAGE,
    )


@router.get("/audit.csv")
def audit_csv(runtime: RuntimeDep, viewer: ViewerDep, filters: FiltersDep) -> Response:
    """The filtered decisions as CSV (newest first, at most `CSV_CAP`)."""
    records = _csv_records(runtime, filters)
    stamp = runtime.clock().strftime("%Y%m%d-%H%M")
    return Response(
        to_csv(records),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="tactful-audit-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _csv_records(runtime: Runtime, filters: AuditFilters) -> list[DecisionRecord]:
    out: list[DecisionRecord] = []
    before: tuple[datetime, str] | None = None
    while len(out) < CSV_CAP:
        limit = min(2_000, CSV_CAP - len(out))
        page = runtime.store.audit(filters.query(limit, before))
        out.extend(page)
        if len(page) < limit:
            break
        before = (page[-1].decided_at, page[-1].decision_id)
    return out
