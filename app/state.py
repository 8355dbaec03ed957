"""What the service holds while it runs: settings, model, catalog, worker pool, metrics, map.

Owned by the lifespan (app/main.py), which fills it in a background task so the process answers
/healthz at once; routes never read it directly but declare what they use through the
dependencies of app/deps.py, which answer 503 until the model and the catalog are up (or if
loading failed).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.access import SearchLimiter
from app.catalog_map import CatalogMap
from app.metrics import Metrics
from app.pool import EmbedPool
from app.settings import Settings
from index.catalog import Catalog
from model.evaluation.calibration import Calibration
from model.inference.embedder import Embedder


@dataclass
class ServiceState:
    """The long-lived objects of one app; `embedder` and `catalog` stay None until loaded."""

    settings: Settings
    metrics: Metrics
    pool: EmbedPool
    map: CatalogMap
    embedder: Embedder | None = None
    catalog: Catalog | None = None
    limiter: SearchLimiter | None = None
    calibration: Calibration | None = None
    failed: bool = False

    @property
    def ready(self) -> bool:
        return self.embedder is not None and self.catalog is not None and not self.failed

    def index_size(self) -> float:
        """Searchable vectors, for the metrics gauge (NaN rather than a failed scrape)."""
        if self.catalog is None:
            return 0.0
        try:
            return float(self.catalog.vectors.count)
        except Exception:
            return float("nan")
