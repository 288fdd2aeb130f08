"""Dependencies routes declare: the runtime, the store, and an API key with a scope."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from tactful.service.errors import ApiError
from tactful.service.runtime import Runtime
from tactful.store.base import ApiKey, Store
from tactful.text import NUL_MESSAGE

SCOPES = ("decide", "ingest", "read", "admin")


# The dependencies are `async def` so that FastAPI runs them on the event loop rather than
# hopping to a worker thread for each; none of them waits on anything but the store's
# key lookup, which is cached (see `SqlStore.check_key`).


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_store(runtime: RuntimeDep) -> Store:
    return runtime.store


StoreDep = Annotated[Store, Depends(get_store)]


def presented_key(request: Request) -> str | None:
    """The key from `Authorization: Bearer`, `X-API-Key`, or HTTP Basic's user (Segment)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
        return user or None
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def authorize(request: Request, runtime: Runtime, scope: str) -> ApiKey:
    """The request's key, if it carries `scope` (or `admin`); else a 401 or 403."""
    secret = presented_key(request)
    if not secret:
        raise ApiError(
            401,
            "unauthorized",
            "An API key is required: send `Authorization: Bearer <key>`.",
            headers={"WWW-Authenticate": 'Bearer realm="tactful"'},
        )
    key = runtime.store.check_key(secret)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "This API key is not valid (unknown or revoked).",
            headers={"WWW-Authenticate": 'Bearer realm="tactful"'},
        )
    if scope not in key.scopes and "admin" not in key.scopes:
        raise ApiError(
            403,
            "forbidden",
            f"This API key lacks the `{scope}` scope (it has: {', '.join(sorted(key.scopes))}).",
        )
    request.state.key = key
    return key


def require(scope: str) -> Callable[[Request, Runtime], Awaitable[ApiKey]]:
    """A dependency that admits a request whose key carries `scope` (or `admin`)."""

    async def check(request: Request, runtime: RuntimeDep) -> ApiKey:
        return authorize(request, runtime, scope)

    check.__name__ = f"require_{scope}"
    return check


DecideKey = Annotated[ApiKey, Depends(require("decide"))]
IngestKey = Annotated[ApiKey, Depends(require("ingest"))]
ReadKey = Annotated[ApiKey, Depends(require("read"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]


def plain_text_params(request: Request) -> None:
    """No path or query parameter holds the NUL character (`%00`): a 422 naming it, as a
    body field with one is (PostgreSQL cannot compare or store such text)."""
    found = [("path", k, v) for k, v in request.path_params.items() if "\x00" in str(v)]
    found += [("query", k, v) for k, v in request.query_params.multi_items() if "\x00" in k + v]
    if found:
        raise RequestValidationError(
            [
                {"type": "nul", "loc": (where, name), "msg": NUL_MESSAGE, "input": value}
                for where, name, value in found
            ]
        )


def one_value_each(request: Request) -> None:
    """Every query parameter of this API takes one value: one given twice is an error naming
    it (FastAPI would keep the last and never look at the others)."""
    params = request.query_params
    if len(params) == len(params.multi_items()):
        return
    counts = Counter(name for name, _ in params.multi_items())
    raise RequestValidationError(
        [
            {
                "type": "repeated",
                "loc": ("query", name),
                "msg": f"give {name} once (it came {times} times)",
                "input": params.getlist(name),
            }
            for name, times in sorted(counts.items())
            if times > 1
        ]
    )
