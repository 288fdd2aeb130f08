"""`POST /v1/decisions` answered without FastAPI's routing and dependency machinery.

The decide call is the service's hot path; FastAPI's telemetry, middleware stack, router and
dependency solving cost about a fifth of its CPU. This ASGI middleware answers a well-formed,
authorised proposal itself with the same functions the route uses (`authorize`,
`ProposalIn`, `decide_and_render_soon`), so the answer is byte for byte the route's. Anything
else (a bad key, an invalid body, an oversized or non-JSON request) is handed to the app
with the body replayed, so every error answer comes from the one place that makes it.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tactful.service.deps import authorize
from tactful.service.errors import ApiError
from tactful.service.routes.decisions import decide_and_render_soon
from tactful.service.runtime import Runtime
from tactful.service.schemas import ProposalIn
from tactful.store.base import StoreError

PATH = "/v1/decisions"
#: Bodies above this go through the app (a proposal is a few hundred bytes).
MAX_BODY = 64 * 1024


class DecideFastPath:
    """Pure ASGI middleware, in front of FastAPI's own (`app.App`): see the module
    docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        size = 0
        complete = False
        while size <= MAX_BODY:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see it as it would
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        if not complete or size > MAX_BODY or not await self._answer(scope, messages, send):
            await self.app(scope, _replay(messages, receive), send)

    async def _answer(self, scope: Scope, messages: list[Message], send: Send) -> bool:
        """Answer the request, or return False (nothing sent) to leave it to the app."""
        runtime: Runtime | None = getattr(scope["app"].state, "runtime", None)
        if runtime is None or not _json_content(scope):
            return False
        request = Request(scope)
        try:
            authorize(request, runtime, "decide")
            body = b"".join(m.get("body", b"") for m in messages)
            parsed = ProposalIn.model_validate(json.loads(body))
            proposal = parsed.to_model()
        except (ApiError, StoreError, ValidationError, ValueError):
            # The route answers these (a store down while checking the key included).
            return False
        if parsed.on_defer == "queue":
            return False  # the route keeps a queued defer (routes/queue.py)
        try:
            out = await decide_and_render_soon(runtime, proposal, parsed)
        except Exception as exc:
            handler = _handler(scope["app"], exc)
            if handler is None:
                raise
            response = await handler(request, exc)
            await response(scope, _disconnected, send)
            return True
        payload = out.model_dump_json().encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(payload)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return True


def _json_content(scope: Scope) -> bool:
    """FastAPI reads a body as JSON when the content type says so or none is given."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            main = value.partition(b";")[0].strip().lower()
            if not main:
                return True
            kind, _, subtype = main.partition(b"/")
            return bool(
                kind == b"application" and (subtype == b"json" or subtype.endswith(b"+json"))
            )
    return True


def _handler(app: Any, exc: Exception) -> Any:
    """The app's exception handler for `exc` (by its class, most specific first)."""
    handlers: dict[Any, Any] = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives back what was read, then carries on with the real one."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _disconnected() -> Message:
    return {"type": "http.disconnect"}
