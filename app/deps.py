"""FastAPI dependencies as `Annotated` aliases (full-stack-fastapi-template style).

Each route declares exactly what it uses (`settings: SettingsDep`, `tracks: RepositoryDep`,
`embedder: EmbedderDep`, ...) and gets a ready object or a 503 while the model or the catalog is
still loading; only this module knows that they live in the lifespan's `ServiceState`.
`WriteAuth` guards the write routes with the API key when one is configured.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.access import AudioLinks, read_allowed
from app.auth import HEADER, UNAUTHORIZED, key_matches
from app.catalog_map import CatalogMap
from app.errors import ApiError
from app.jobs import JobRunner
from app.metrics import Metrics
from app.settings import Settings
from app.state import ServiceState
from index.catalog import Catalog
from index.repository import TrackRepository
from model.evaluation.calibration import Calibration
from model.inference.embedder import Embedder

api_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                              description="needed for writes when CVSM_API_KEY is set, and for "
                              "reads when CVSM_READ_API_KEY is set")


def _state(request: Request) -> ServiceState:
    return request.app.state.service


def _ready_state(state: Annotated[ServiceState, Depends(_state)]) -> ServiceState:
    """The state, or 503 while the model or catalog is still loading (or failed to)."""
    if not state.ready:
        raise ApiError(503, "not_ready", "the service is not ready yet; retry shortly",
                       {"Retry-After": "5"})
    return state


def get_settings(state: Annotated[ServiceState, Depends(_state)]) -> Settings:
    return state.settings


def get_metrics(state: Annotated[ServiceState, Depends(_state)]) -> Metrics:
    return state.metrics


def get_map(state: Annotated[ServiceState, Depends(_state)]) -> CatalogMap:
    return state.map


def get_jobs(state: Annotated[ServiceState, Depends(_state)]) -> JobRunner:
    """The bounded embedding pool, counting refusals in the metrics."""
    return JobRunner(state.pool, state.metrics)


def get_catalog(state: Annotated[ServiceState, Depends(_ready_state)]) -> Catalog:
    assert state.catalog is not None
    return state.catalog


def get_embedder(state: Annotated[ServiceState, Depends(_ready_state)]) -> Embedder:
    assert state.embedder is not None
    return state.embedder


def get_calibration(state: Annotated[ServiceState, Depends(_ready_state)]
                    ) -> Calibration | None:
    """The served model's score calibration (None: hits carry the cosine only)."""
    return state.calibration


def get_repository(catalog: Annotated[Catalog, Depends(get_catalog)]) -> TrackRepository:
    """The track rows, for routes that only read them."""
    return catalog.repository


def get_loaded_catalog(state: Annotated[ServiceState, Depends(_state)]) -> Catalog | None:
    """The catalog if the service is ready, else None (for /readyz, which explains itself)."""
    return state.catalog if state.ready else None


def get_loaded_embedder(state: Annotated[ServiceState, Depends(_state)]) -> Embedder | None:
    return state.embedder if state.ready else None


def check_api_key(settings: Annotated[Settings, Depends(get_settings)],
                  given: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Constant-time comparison, so response timing reveals nothing about the key."""
    if not key_matches(settings.api_key, given):
        raise ApiError(401, "unauthorized", UNAUTHORIZED)


def check_read_key(settings: Annotated[Settings, Depends(get_settings)],
                   given: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Private catalogs (CVSM_READ_API_KEY): reads need the read key or the write key."""
    if not read_allowed(settings.read_api_key, settings.api_key, given):
        raise ApiError(401, "unauthorized", UNAUTHORIZED)


def get_links(settings: Annotated[Settings, Depends(get_settings)]) -> AudioLinks:
    """Audio URLs for responses (signed when the catalog is private)."""
    return AudioLinks(settings.read_api_key, settings.audio_url_ttl_s)


def limit_search(request: Request, state: Annotated[ServiceState, Depends(_state)],
                 given: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """One search counted against the client (its key, else its address); 429 past it."""
    client = f"key:{hashlib.sha256(given.encode()).hexdigest()[:16]}" if given else \
        f"ip:{request.client.host if request.client else '?'}"
    if state.limiter is not None:
        state.limiter.hit(client)


SettingsDep = Annotated[Settings, Depends(get_settings)]
LinksDep = Annotated[AudioLinks, Depends(get_links)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
MapDep = Annotated[CatalogMap, Depends(get_map)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
RepositoryDep = Annotated[TrackRepository, Depends(get_repository)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
CalibrationDep = Annotated[Calibration | None, Depends(get_calibration)]
LoadedCatalogDep = Annotated[Catalog | None, Depends(get_loaded_catalog)]
LoadedEmbedderDep = Annotated[Embedder | None, Depends(get_loaded_embedder)]
WriteAuth = Depends(check_api_key)
ReadAuth = Depends(check_read_key)
SearchLimit = Depends(limit_search)
