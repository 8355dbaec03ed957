"""`GET /v1/map`: the catalog on a 2-D PCA plane, for the page's embedding map.

Computed once per catalog version (adds and deletes through the API bump it) over at most
`map_points` tracks, and cached; search results carry the query's point in the same frame.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.deps import StateDep
from app.projection import Projection
from app.schemas import MapPoint, MapResponse
from app.state import ServiceState

router = APIRouter(prefix="/v1", tags=["search"])


def _sample(state: ServiceState) -> tuple[list, np.ndarray, int]:
    """Up to `map_points` catalog records with their vectors, and the catalog size."""
    records, total = state.catalog.list_tracks(0, state.settings.map_points)
    kept, vectors = [], []
    for record in records:
        vector = state.catalog.vector_of(record.id)
        if vector is not None:
            kept.append(record)
            vectors.append(np.asarray(vector, dtype=np.float32))
    return kept, np.stack(vectors) if vectors else np.zeros((0, 1)), total


def refresh_map(state: ServiceState) -> None:
    """Recompute the cached map if the catalog changed since it was made."""
    cache = state.map
    with cache.lock:
        version = state.version  # bumped by API writes and by refreshes that changed rows
        if cache.version == version:
            return
        records, vectors, total = _sample(state)
        if len(records) == 0:
            cache.projection, cache.points = None, []
        else:
            cache.projection = Projection.fit(vectors)
            xy = cache.projection.apply(vectors)
            cache.points = [{"id": r.id, "x": float(p[0]), "y": float(p[1]),
                             "title": r.title or None, "artist": r.artist or None}
                            for r, p in zip(records, xy, strict=True)]
        cache.version, cache.total = version, total


@router.get("/map", response_model=MapResponse,
            summary="The catalog projected to 2-D (PCA of the track embeddings)")
async def catalog_map(state: StateDep) -> MapResponse:
    await run_in_threadpool(refresh_map, state)
    return MapResponse(points=[MapPoint(**p) for p in state.map.points], total=state.map.total)
