"""What the service holds while it runs: settings, model, catalog, worker pool, map cache.

Loading happens in a background task started by the lifespan, so the process answers /healthz
at once and /readyz (and every API route, with 503) says "not ready" until the model and the
catalog are up, or if loading failed.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from app import catalog_map
from app.catalog_map import MapCache
from app.metrics import Metrics
from app.pool import EmbedPool
from app.settings import Settings
from index.catalog import Catalog
from model.inference.embedder import Embedder

log = logging.getLogger("cvsm.app")


@dataclass
class ServiceState:
    settings: Settings
    metrics: Metrics
    pool: EmbedPool
    embedder: Embedder | None = None
    catalog: Catalog | None = None
    failed: bool = False
    #: Bumped on every catalog change the service sees (API writes, refreshes that picked up
    #: rows from `cvsm index`): tells the map cache it is stale.
    version: int = 0
    map: MapCache = field(default_factory=MapCache)

    @property
    def ready(self) -> bool:
        return self.embedder is not None and self.catalog is not None and not self.failed

    def index_size(self) -> float:
        if self.catalog is None:
            return 0.0
        try:
            return float(self.catalog.stats()["count"])
        except Exception:  # a scrape must not fail because the DB blinked
            return float("nan")

    def touch(self) -> None:
        self.version += 1

    def schedule_map_refresh(self) -> None:
        """Start a background map refresh if one is due (never blocks a request)."""
        s = self.settings
        busy = self.catalog is None or self.map.lock.locked()
        if busy or not catalog_map.is_due(self.map, self.version, s.map_refresh_seconds):
            return
        threading.Thread(target=catalog_map.refresh_quietly, name="cvsm-map", daemon=True,
                         args=(self.map, self.catalog, self.version, s.map_points,
                               s.map_refresh_seconds)).start()

