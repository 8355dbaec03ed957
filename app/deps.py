"""FastAPI dependencies as `Annotated` aliases (full-stack-fastapi-template style).

Routes declare `state: StateDep` or `catalog: CatalogDep` and get a ready object or a 503;
`WriteAuth` guards the write routes with the API key when one is configured.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.auth import HEADER, UNAUTHORIZED, key_matches
from app.errors import ApiError
from app.settings import Settings
from app.state import ServiceState
from index.catalog import Catalog
from model.inference.embedder import Embedder

api_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                              description="needed for writes when CVSM_API_KEY is set")


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


def get_ready_state(state: Annotated[ServiceState, Depends(get_state)]) -> ServiceState:
    """The state, or 503 while the model or catalog is still loading (or failed to)."""
    if not state.ready:
        raise ApiError(503, "not_ready", "the service is not ready yet; retry shortly",
                       {"Retry-After": "5"})
    return state


def get_settings(state: Annotated[ServiceState, Depends(get_state)]) -> Settings:
    return state.settings


def get_catalog(state: Annotated[ServiceState, Depends(get_ready_state)]) -> Catalog:
    assert state.catalog is not None
    return state.catalog


def get_embedder(state: Annotated[ServiceState, Depends(get_ready_state)]) -> Embedder:
    assert state.embedder is not None
    return state.embedder


def check_api_key(settings: Annotated[Settings, Depends(get_settings)],
                  given: Annotated[str | None, Security(api_key_header)] = None) -> None:
    """Constant-time comparison, so response timing reveals nothing about the key."""
    if not key_matches(settings.api_key, given):
        raise ApiError(401, "unauthorized", UNAUTHORIZED)


StateDep = Annotated[ServiceState, Depends(get_ready_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
WriteAuth = Depends(check_api_key)
