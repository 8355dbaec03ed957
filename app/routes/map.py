"""`GET /v1/map`: the catalog on a 2-D PCA plane, for the page's embedding map (app/catalog_map)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import MapDep, ReadAuth, RepositoryDep
from app.schemas import MapPoint, MapResponse

router = APIRouter(prefix="/v1", tags=["search"])


@router.get("/map", response_model=MapResponse,
            summary="The catalog projected to 2-D (PCA of the track embeddings)",
            dependencies=[ReadAuth])
async def get_map(catalog_map: MapDep, tracks: RepositoryDep) -> MapResponse:
    """Up to `CVSM_MAP_POINTS` tracks; search answers carry `query.map_version` and a point in
    the frame of this map's `version`."""
    cache = await run_in_threadpool(catalog_map.refresh, tracks)
    return MapResponse(points=[MapPoint(**p) for p in cache.points], total=cache.total,
                       version=cache.version)
