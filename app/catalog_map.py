"""The embedding map's cache: a 2-D PCA of up to `map_points` catalog vectors.

Reading a large catalog's vectors is slow (seconds at 10^5 tracks), so the map is never
recomputed on the search path: searches project the query with whatever map is cached and
at most start a background refresh; `GET /v1/map` recomputes only when the catalog changed
and the cached map is older than `map_refresh_seconds`. One refresh runs at a time; a caller
that finds one running keeps the cached map instead of waiting (unless there is none yet).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from app.projection import Projection

log = logging.getLogger("cvsm.app")


@dataclass
class MapCache:
    """The last map, the catalog version it reflects and when it was made."""

    version: int = -1
    projection: Projection | None = None
    points: list[dict] = field(default_factory=list)
    total: int = 0
    computed_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _sample(catalog, limit: int) -> tuple[list, np.ndarray, int]:
    """Up to `limit` catalog records with their stored vectors, and the catalog size: two
    queries, not one per track (a 2,000-point map used to cost 2,000 round trips)."""
    return catalog.repository.page_with_vectors(limit)


def _compute(cache: MapCache, catalog, limit: int, version: int) -> None:
    records, vectors, total = _sample(catalog, limit)
    projection, points = None, []
    if records:
        projection = Projection.fit(vectors)
        xy = projection.apply(vectors)
        points = [{"id": r.id, "x": float(p[0]), "y": float(p[1]), "title": r.title or None,
                   "artist": r.artist or None} for r, p in zip(records, xy, strict=True)]
    cache.projection, cache.points, cache.total = projection, points, total
    cache.version, cache.computed_at = version, time.monotonic()


def is_due(cache: MapCache, version: int, max_age: float) -> bool:
    """Stale, and either missing or older than `max_age` seconds."""
    if cache.version == version:
        return False
    return cache.version < 0 or time.monotonic() - cache.computed_at >= max_age


def refresh(cache: MapCache, catalog, version: int, limit: int, max_age: float) -> None:
    """Recompute if due (see module doc); safe to call from any thread."""
    if not is_due(cache, version, max_age):
        return
    if not cache.lock.acquire(blocking=cache.version < 0):
        return  # another thread is refreshing and a map exists: keep it
    try:
        if is_due(cache, version, max_age):
            _compute(cache, catalog, limit, version)
    finally:
        cache.lock.release()


def refresh_quietly(cache: MapCache, catalog, version: int, limit: int, max_age: float) -> None:
    """`refresh` for background threads: a failure is logged, never raised into a request."""
    try:
        refresh(cache, catalog, version, limit, max_age)
    except Exception:
        log.exception("map refresh failed")


def project(cache: MapCache, vector: np.ndarray) -> list[float] | None:
    """The vector's point in the cached map's frame, if a map exists."""
    projection = cache.projection
    if projection is None:
        return None
    return [float(v) for v in projection.apply(vector)]
