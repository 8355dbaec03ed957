"""`/v1/tracks`: read, page, add (upload + embed + store, durable before 201), delete, stream."""

from __future__ import annotations

import json
import mimetypes
import uuid
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, Security, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from app.access import read_allowed
from app.deps import (
    CatalogDep,
    EmbedderDep,
    JobsDep,
    LinksDep,
    MapDep,
    ReadAuth,
    RepositoryDep,
    SettingsDep,
    WriteAuth,
    api_key_header,
)
from app.errors import ApiError
from app.jobs import decode_checked
from app.routes.common import ERRORS, track_out
from app.schemas import TrackOut, TrackPage
from app.settings import Settings
from index.catalog import Catalog, TrackRecord
from model.inference.embedder import Embedder

router = APIRouter(prefix="/v1/tracks", tags=["tracks"])

NOT_FOUND = {404: ERRORS[404]}
#: Ids travel in URL paths: no slashes, spaces or other characters that need escaping.
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
#: Larger offsets overflow SQL's 64-bit integers (a 500 found by schemathesis); none is needed.
MAX_OFFSET = 10**12


def _not_found(track_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no track with id {track_id}")


@router.get("", response_model=TrackPage, summary="List catalog tracks, paged",
            dependencies=[ReadAuth])
async def list_tracks(tracks: RepositoryDep, links: LinksDep,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                      limit: Annotated[int, Query(ge=1, le=500)] = 50) -> TrackPage:
    records, total = await run_in_threadpool(tracks.page, offset, limit)
    return TrackPage(items=[track_out(r, links) for r in records], total=total, offset=offset,
                     limit=limit)


@router.get("/{track_id}", response_model=TrackOut, responses=NOT_FOUND,
            summary="One track", dependencies=[ReadAuth])
async def get_track(track_id: str, tracks: RepositoryDep, links: LinksDep) -> TrackOut:
    record = await run_in_threadpool(tracks.get, track_id)
    if record is None:
        raise _not_found(track_id)
    return track_out(record, links)


@router.get("/{track_id}/audio", responses=NOT_FOUND, response_class=FileResponse,
            summary="Stream the track's catalog audio file")
async def track_audio(track_id: str, catalog: CatalogDep, settings: SettingsDep,
                      links: LinksDep, expires: int | None = None, sig: str | None = None,
                      key: Annotated[str | None, Security(api_key_header)] = None
                      ) -> FileResponse:
    """Private catalogs: the read (or write) key in `X-API-Key`, or a signed link from a
    search or listing (`expires`, `sig`), which players can use without the key."""
    if not read_allowed(settings.read_api_key, settings.api_key, key):
        links.check(track_id, expires, sig)
    exists, path = await run_in_threadpool(catalog.audio_path, track_id)
    if not exists:
        raise _not_found(track_id)
    if path is None:
        raise ApiError(404, "audio_unavailable",
                       f"track {track_id} is in the catalog but its audio file is missing or "
                       "outside the data dir: index the catalog again (cvsm index) or upload "
                       "the track again")
    media = mimetypes.guess_type(str(path))[0] or "application/octet-stream"
    return FileResponse(path, media_type=media)


def _parse_metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_parameters", "metadata must be a JSON object")
    return value


def _safe_name(filename: str | None) -> str:
    """Only the base name of what the client calls its file (never a path)."""
    name = PurePath((filename or "upload").replace("\\", "/")).name
    return name[:200] or "upload"


def _add(settings: Settings, embedder: Embedder, catalog: Catalog, data: bytes, filename: str,
         fields: dict[str, Any]) -> TrackRecord:
    """Decode, embed and store one track (runs on a pool worker)."""
    audio = decode_checked(data, settings.max_track_seconds, settings.min_audio_seconds,
                           threads=embedder.lanes)
    vector = embedder.embed_waveform(audio.samples)
    return catalog.add_track(audio.samples, source_bytes=data, filename=filename, vector=vector,
                             **fields)


@router.post("", status_code=201, response_model=TrackOut, responses=ERRORS,
             dependencies=[WriteAuth], summary="Add a track with its audio")
async def add_track(
    settings: SettingsDep,
    embedder: EmbedderDep,
    catalog: CatalogDep,
    jobs: JobsDep,
    catalog_map: MapDep,
    links: LinksDep,
    file: Annotated[UploadFile, File(description="the track's audio")],
    title: Annotated[str, Form(max_length=512, examples=["Morning song"])] = "",
    artist: Annotated[str, Form(max_length=512, examples=["singer00"])] = "",
    track_id: Annotated[str | None, Form(alias="id", pattern=ID_PATTERN,
                                         description="your id (an existing one is replaced); "
                                         "default: generated")] = None,
    metadata: Annotated[str | None, Form(description="JSON object",
                                         examples=['{"gender": "female"}'])] = None,
) -> TrackOut:
    """The track is decoded, embedded and written to SQL and the index before the 201."""
    fields = {"external_id": track_id or f"upload-{uuid.uuid4().hex}", "title": title,
              "artist": artist, "metadata": _parse_metadata(metadata)}
    data = await file.read()
    record = await jobs.run(_add, settings, embedder, catalog, data, _safe_name(file.filename),
                            fields)
    catalog_map.touch()
    return track_out(record, links)


@router.delete("/{track_id}", status_code=204, responses=NOT_FOUND, dependencies=[WriteAuth],
               summary="Remove a track from the catalog and the index")
async def delete_track(track_id: str, catalog: CatalogDep, catalog_map: MapDep) -> Response:
    deleted = await run_in_threadpool(catalog.delete_track, track_id)
    if not deleted:
        raise _not_found(track_id)
    catalog_map.touch()
    return Response(status_code=204)
