"""The embedding map: a cached 2-D PCA of up to `map_points` catalog vectors.

Reading a large catalog's vectors is slow (seconds at 10^5 tracks), so the map is never
recomputed on the search path: searches project the query with whatever map is cached and
at most start a background refresh; `GET /v1/map` recomputes only when the catalog changed
and the cached map is older than `map_refresh_seconds`. One refresh runs at a time; a caller
that finds one running keeps the cached map instead of waiting (unless there is none yet).
The catalog's version is counted here because the map is the only thing that needs it: every
change the service sees (API writes, refreshes that picked up rows from `cvsm index`) bumps it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from app.projection import Projection
from index.repository import TrackRepository

log = logging.getLogger("cvsm.app")


@dataclass
class MapCache:
    """The last map, the catalog version it reflects and when it was made."""

    version: int = -1
    projection: Projection | None = None
    points: list[dict] = field(default_factory=list)
    total: int = 0
    computed_at: float = 0.0


class CatalogMap:
    """The map cache of one service, with the catalog version it is compared against."""

    def __init__(self, points: int, max_age: float) -> None:
        """`points`: how many tracks to sample; `max_age`: seconds a stale map is kept."""
        self.points, self.max_age = points, max_age
        self.cache = MapCache()
        self.version = 0
        self._lock = threading.Lock()

    def touch(self) -> None:
        """The catalog changed: the cached map is stale from now on."""
        self.version += 1

    def is_due(self) -> bool:
        """Stale, and either missing or older than `max_age` seconds."""
        cache = self.cache
        if cache.version == self.version:
            return False
        return cache.version < 0 or time.monotonic() - cache.computed_at >= self.max_age

    def refresh(self, tracks: TrackRepository) -> MapCache:
        """Recompute if due (see module doc) and return the map; safe from any thread."""
        if not self.is_due():
            return self.cache
        if not self._lock.acquire(blocking=self.cache.version < 0):
            return self.cache  # another thread is refreshing and a map exists: keep it
        try:
            if self.is_due():
                self.cache = _compute(tracks, self.points, self.version)
        finally:
            self._lock.release()
        return self.cache

    def schedule_refresh(self, tracks: TrackRepository) -> None:
        """Start a background refresh if one is due (never blocks a request)."""
        if self._lock.locked() or not self.is_due():
            return
        threading.Thread(target=self._refresh_quietly, args=(tracks,), name="cvsm-map",
                         daemon=True).start()

    def _refresh_quietly(self, tracks: TrackRepository) -> None:
        """`refresh` for background threads: a failure is logged, never raised into a request."""
        try:
            self.refresh(tracks)
        except Exception:
            log.exception("map refresh failed")

    def project(self, vector: np.ndarray) -> tuple[list[float] | None, int]:
        """The vector's point in the cached map's frame (None while there is no map) and that
        map's version, read from one snapshot so the two always belong together."""
        cache = self.cache
        if cache.projection is None:
            return None, cache.version
        return [float(v) for v in cache.projection.apply(vector)], cache.version


def _compute(tracks: TrackRepository, limit: int, version: int) -> MapCache:
    """A fresh map of up to `limit` tracks. Their records and vectors come in two queries (a
    2,000-point map once cost 2,000 round trips)."""
    records, vectors, total = tracks.page_with_vectors(limit)
    projection, points = None, []
    if records:
        projection = Projection.fit(vectors)
        xy = projection.apply(vectors)
        points = [{"id": r.id, "x": float(p[0]), "y": float(p[1]), "title": r.title or None,
                   "artist": r.artist or None} for r, p in zip(records, xy, strict=True)]
    return MapCache(version=version, projection=projection, points=points, total=total,
                    computed_at=time.monotonic())
