"""Liveness, readiness and Prometheus metrics (unversioned, as probes expect)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from app.deps import LoadedCatalogDep, LoadedEmbedderDep, MetricsDep
from app.errors import ApiError
from app.schemas import ErrorBody, Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": ErrorBody}},
            summary="Model and index loaded, database reachable")
async def readyz(catalog: LoadedCatalogDep, embedder: LoadedEmbedderDep) -> Ready:
    if catalog is None or embedder is None:
        raise ApiError(503, "not_ready", "the model or the catalog is not loaded")
    if not await run_in_threadpool(catalog.repository.ping):
        raise ApiError(503, "not_ready", "the database is not reachable")
    return Ready(status="ready", tracks=catalog.vectors.count, model=embedder.fingerprint)


@router.get("/metrics", summary="Prometheus text format", response_class=Response)
async def metrics(collectors: MetricsDep) -> Response:
    body = await run_in_threadpool(collectors.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
