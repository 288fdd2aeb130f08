"""The FastAPI application: settings, store and policy in, routes out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.types import Receive, Scope, Send

from tactful import __version__
from tactful.jurisdiction import geodata
from tactful.service import errors
from tactful.service.config import Settings
from tactful.service.deps import one_value_each, plain_text_params
from tactful.service.fastpath import DecideFastPath
from tactful.service.heap import keep_heap_frozen
from tactful.service.routes import (
    audiences,
    audit,
    customers,
    decisions,
    events,
    health,
    policy,
    queue,
    segment,
    unsubscribe,
    webhooks,
    webhooks_out,
)
from tactful.service.runtime import Clock, Runtime, system_clock
from tactful.service.schemas import ErrorOut
from tactful.store import open_store
from tactful.store.base import Store
from tactful.web import dashboard, deliveries, preferences

DESCRIPTION = """
Ask before you reach out. `POST /v1/decisions` answers **allow**, **defer** (with
`not_before`) or **deny**, with reasons; an allow holds the slot until you confirm it was
`sent` or `cancel` it. Report customer events with `POST /v1/events` (or Segment's
`/v1/batch`, `/v1/track`, `/v1/identify`), and outcomes with `/v1/decisions/{id}/outcome`.

Text anywhere in a request may not contain the NUL character (U+0000): it is refused with
a 422 naming the field (Segment's and Twilio's endpoints answer 400, and a batch names the
message in `errors`, as for any other bad message; so does SendGrid's).

Authenticate with an API key: `Authorization: Bearer <key>`. Scopes: `decide`, `ingest`,
`read`, `admin` (admin implies all). Create one with `tactful keys create --scope decide`.
"""


class App(FastAPI):
    """FastAPI with the decide fast path in front, when `fast` is set."""

    fast: DecideFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast is not None and scope["type"] == "http":
            scope["app"] = self  # as FastAPI sets it: the fast path reads its state
            await self.fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def framework(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app as FastAPI runs it: what the fast path hands on."""
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the app. Without `store`, the store is opened from `settings.database_url`
    when the app starts and closed when it stops."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        geodata()  # loaded now, not by the first decision about a regional rule
        the_store = (
            store
            if store is not None
            else open_store(settings.database_url, state_cache=settings.state_cache_size)
        )
        app.state.runtime = runtime = Runtime(settings, the_store, clock=clock)
        # Deferred delivery (tactful/worker.py): `tactful serve` runs it unless --no-worker.
        worker = None
        if settings.worker:
            from tactful.worker import Worker

            worker = Worker(runtime)
            worker.start()
        heap = None
        if settings.gc_freeze_seconds > 0:
            heap = asyncio.create_task(keep_heap_frozen(settings.gc_freeze_seconds))
        try:
            yield
        finally:
            if heap is not None:
                heap.cancel()
            if worker is not None:
                await asyncio.to_thread(worker.stop)
            await asyncio.to_thread(runtime.close)
            if own:
                the_store.close()

    app = App(
        title="tactful",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(one_value_each), Depends(plain_text_params)],
        responses={
            400: {"model": ErrorOut, "description": "The body is not valid JSON."},
            422: {"model": ErrorOut, "description": "A field is invalid; `detail` names it."},
        },
    )
    errors.install(app)
    if settings.decide_fast_path:
        # The decide call skips FastAPI's telemetry, middleware, routing and dependencies
        # (see service/fastpath.py); everything else goes through them as usual.
        app.fast = DecideFastPath(app.framework)
    for module in (
        decisions,
        audiences,
        events,
        segment,
        webhooks,
        customers,
        policy,
        audit,
        health,
        unsubscribe,
        queue,
        webhooks_out,
        preferences,
        dashboard,
        deliveries,
    ):
        app.include_router(module.router)
    return app
