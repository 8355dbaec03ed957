"""Pieces shared by the route modules: record -> schema, documented error responses."""

from __future__ import annotations

from typing import Any

from app.access import AudioLinks
from app.schemas import ErrorBody, TrackOut
from index.repository import TrackRecord

#: Error statuses every upload/query route may answer, for the OpenAPI docs.
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "unknown track"},
    413: {"model": ErrorBody, "description": "upload over the size limit"},
    415: {"model": ErrorBody, "description": "unsupported or undecodable audio"},
    422: {"model": ErrorBody, "description": "bad parameters, or too short / silent audio"},
    503: {"model": ErrorBody, "description": "not ready, or the embedding queue is full"},
}


def track_out(record: TrackRecord, links: AudioLinks) -> TrackOut:
    """A catalog `TrackRecord` as the API shows it (its audio link signed when private)."""
    return TrackOut(id=record.id, title=record.title or None,
                    artist=record.artist or None, metadata=dict(record.metadata or {}),
                    duration_s=record.duration, audio_url=links.url(record.id))
