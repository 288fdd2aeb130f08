"""Liveness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tactful.service.deps import ReadKey, RuntimeDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Is the service up and its store reachable?")
def healthz(runtime: RuntimeDep) -> JSONResponse:
    ok = runtime.store.healthy()
    body = {
        "status": "ok" if ok else "degraded",
        "store": "ok" if ok else "unreachable",
        "policy": {"name": runtime.policy.name, "version": runtime.policy.version},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(runtime: RuntimeDep, key: ReadKey) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
