"""`POST /v1/search`: query by an uploaded clip or by a catalog track (search by example)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool

from app.deps import (
    CalibrationDep,
    CatalogDep,
    EmbedderDep,
    JobsDep,
    LinksDep,
    MapDep,
    ReadAuth,
    SearchLimit,
    SettingsDep,
)
from app.errors import ApiError
from app.jobs import JobRunner, embed_query
from app.routes.common import ERRORS, track_out
from app.schemas import Hit, ModelOut, QueryInfo, SearchResponse
from app.scores import readable
from app.settings import Settings
from index.catalog import DEFAULT_MODEL, Catalog, ServedModel, UnknownModelError
from index.repository import TrackRepository
from index.schema import INDEXED
from model.inference.embedder import Embedder

router = APIRouter(prefix="/v1", tags=["search"])

MAX_K = 100
NO_SINGING = ("no singing found: no second of this clip sounds like a voice, so there is no "
              "singer to match (try a clip where someone sings)")


async def _upload_vector(file: UploadFile, settings: Settings, embedder: Embedder,
                         jobs: JobRunner) -> tuple[np.ndarray, QueryInfo]:
    """The uploaded clip's embedding (decoded and embedded in the bounded pool)."""
    data = await file.read()
    query = await jobs.run(embed_query, embedder, data, settings.max_query_seconds,
                           settings.min_audio_seconds)
    selection = "singing" if embedder.detects_singing else "sound"
    return query.vector, QueryInfo(duration_s=round(query.duration, 3), used_seconds=query.used,
                                   selection=selection, singing_found=query.singing)


async def _track_vector(tracks: TrackRepository, track_id: str,
                        fingerprint: str) -> tuple[np.ndarray, QueryInfo]:
    """A catalog track's stored vector of the model (search by example); 404 for unknown or
    failed ids, or a track that model has not embedded."""
    vector = await run_in_threadpool(tracks.vector_of, track_id, fingerprint)
    record = await run_in_threadpool(tracks.get, track_id)
    if vector is None and record is not None and record.status == INDEXED \
            and fingerprint != tracks.fingerprint:
        raise ApiError(404, "not_embedded", f"this model has not embedded track {track_id} "
                       "yet: run `cvsm index --extra-model` for it")
    if vector is None:
        raise ApiError(404, "not_found", f"no track with id {track_id}")
    duration = record.duration if record is not None else None
    return np.asarray(vector, dtype=np.float32), QueryInfo(duration_s=duration,
                                                           track_id=track_id)


@router.post("/search", response_model=SearchResponse, responses=ERRORS,
             dependencies=[ReadAuth, SearchLimit],
             summary="Find the catalog tracks whose singer sounds most like the query")
async def search(
    settings: SettingsDep,
    embedder: EmbedderDep,
    catalog: CatalogDep,
    jobs: JobsDep,
    catalog_map: MapDep,
    calibration: CalibrationDep,
    links: LinksDep,
    file: Annotated[UploadFile | None, File(description="audio clip (WAV, FLAC, OGG, Opus, "
                                            "MP3, M4A)")] = None,
    track_id: Annotated[str | None, Form(description="search by this catalog track instead",
                                         examples=["singer00_song01"])] = None,
    k: Annotated[int, Form(ge=1, le=MAX_K, description="how many results")] = 10,
    exclude_artist: Annotated[str | None, Form(description="leave out this artist",
                                               examples=["singer00"])] = None,
    min_score: Annotated[float | None, Form(ge=-1.0, le=1.0,
                                            description="drop results below this cosine")] = None,
    model: Annotated[str | None, Form(description="which served model answers (`GET "
                                      "/v1/models`); default: the default model")] = None,
) -> SearchResponse:
    """Multipart form: `file` (or `track_id`), `k`, `exclude_artist`, `min_score`, `model`.

    Results are ranked by cosine similarity of the track embeddings; with `track_id` the track
    itself is left out. `query.point` places the query on the map of `GET /v1/map` (default
    model only); `same_singer` is given where the model has a calibration.
    """
    if (file is None) == (track_id is None):
        raise ApiError(422, "invalid_parameters", "send exactly one of `file` or `track_id`")
    served = _served(catalog, model)
    own = served.name == DEFAULT_MODEL
    if file is not None:
        vector, info = await _upload_vector(file, settings,
                                            embedder if own else served.embedder, jobs)
    else:
        vector, info = await _track_vector(catalog.repository, track_id, served.fingerprint)
    if info.singing_found is False:  # nothing to match a singer against: say so, no verdicts
        info.note = NO_SINGING
        info.used_seconds = [False] * len(info.used_seconds or [])
        return SearchResponse(query=info, model=served.name, results=[])
    exclude_ids = (track_id,) if track_id is not None else ()
    hits = await run_in_threadpool(
        lambda: catalog.search(vector, k, exclude_artist=exclude_artist or None,
                               min_score=min_score, exclude_ids=exclude_ids, model=served.name))
    if own:
        info.point, info.map_version = catalog_map.project(vector)
        catalog_map.schedule_refresh(catalog.repository)
    results = [Hit(**track_out(rec, links).model_dump(), score=round(float(score), 6),
                   **readable(calibration if own else None, float(score)))
               for rec, score in hits]
    return SearchResponse(query=info, model=served.name, results=results)


def _served(catalog: Catalog, name: str | None) -> ServedModel:
    try:
        return catalog.model(name)
    except UnknownModelError as exc:
        raise ApiError(422, "unknown_model", str(exc)) from None


@router.get("/models", response_model=list[ModelOut], dependencies=[ReadAuth],
            summary="The models searches can name")
async def models(catalog: CatalogDep) -> list[ModelOut]:
    """The default model first, then those served beside it (CVSM_EXTRA_MODELS)."""
    stats = await run_in_threadpool(catalog.model_stats)
    return [ModelOut(**m, default=m["name"] == DEFAULT_MODEL) for m in stats]
