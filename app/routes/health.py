"""Liveness, readiness and Prometheus metrics (unversioned, as probes expect)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool

from app.deps import get_state
from app.errors import ApiError
from app.schemas import ErrorBody, Health, Ready
from app.state import ServiceState

router = APIRouter(tags=["health"])
AnyState = Annotated[ServiceState, Depends(get_state)]


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": ErrorBody}},
            summary="Model and index loaded, database reachable")
async def readyz(state: AnyState) -> Ready:
    if not state.ready:
        raise ApiError(503, "not_ready", "the model or the catalog is not loaded")
    if not await run_in_threadpool(state.catalog.repository.ping):
        raise ApiError(503, "not_ready", "the database is not reachable")
    return Ready(status="ready", tracks=int(state.index_size()),
                 model=state.embedder.fingerprint)


@router.get("/metrics", summary="Prometheus text format", response_class=Response)
async def metrics(state: AnyState) -> Response:
    body = await run_in_threadpool(state.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
