"""Errors with a body a person can act on: `{"error": code, "detail": ...}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tactful.policy.errors import PolicyError
from tactful.store.base import Conflict, NotFound, StoreError


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.error, "detail": exc.detail}, exc.status, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return JSONResponse(
            {"error": code, "detail": exc.detail}, exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(x) for x in e["loc"] if x != "body") or "body",
                "message": e["msg"],
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if (
            len(problems) == 1
            and problems[0]["field"] == "body"
            and kind in ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")
        ):
            # curl's -d sends a form: say what the service reads instead.
            problems[0]["message"] = (
                f"the body must be JSON with Content-Type: application/json (it came as {kind})"
            )
        return JSONResponse({"error": "invalid_request", "detail": problems}, 422)

    @app.exception_handler(NotFound)
    async def _nf(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": "not_found", "detail": str(exc)}, 404)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"error": "conflict", "detail": str(exc)}, 409)

    @app.exception_handler(PolicyError)
    async def _policy(request: Request, exc: PolicyError) -> JSONResponse:
        return JSONResponse({"error": "invalid_policy", "detail": exc.as_list()}, 422)

    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError) -> JSONResponse:
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.metrics.store_errors.inc()
        return JSONResponse(
            {
                "error": "store_unavailable",
                "detail": "The ledger cannot be reached, so nothing was decided or recorded. "
                "Retry later; do not contact the customer on this answer.",
            },
            503,
            headers={"Retry-After": "5"},
        )
