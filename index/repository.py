"""SQL reads and writes of track rows: the one place a `tracks` row is filled, and every query
the service makes of them.

Why one writer: a track reaches the catalog two ways, an upload through the HTTP service
(`index.catalog.Catalog.add_track`) and the batch job (`index.job`). Both describe the row as a
`TrackWrite` and hand it to `write_tracks`, so a file added either way gets the same fields
(status, vector encoding and norm, duration, fingerprint), and a fix to one path is a fix to
both. Only `index.merge` copies rows verbatim (they were written here on their shard).

`TrackRepository` is the service's view of the rows of one model (its fingerprint): reads,
single-row writes in their own transaction, and the counts behind `stats`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

from index import db
from index.schema import FAILED, INDEXED, Track, TrackVector
from index.store import decode_vector, encode_vector, live_rows, side_rows
from model.audio.signal import l2_normalise

__all__ = ["TrackRecord", "TrackRepository", "TrackWrite", "unit_vector", "upsert_rows",
           "write_model_vectors", "write_tracks"]


@dataclass(frozen=True)
class TrackRecord:
    """One catalog row as the service shows it. `id` is the stable external id; `source` is the
    audio file's path or URI; `status` is "indexed" or "failed" (then `error` says why)."""

    id: str
    title: str
    artist: str
    metadata: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None
    source: str = ""
    status: str = INDEXED
    error: str | None = None
    content_hash: str = ""
    model_fingerprint: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Track) -> TrackRecord:
        return cls(id=row.external_id, title=row.title, artist=row.artist,
                   metadata=dict(row.extra or {}), duration=row.duration, source=row.source,
                   status=row.status, error=row.error, content_hash=row.content_hash,
                   model_fingerprint=row.model_fingerprint, created_at=row.created_at,
                   updated_at=row.updated_at)


@dataclass(frozen=True)
class TrackWrite:
    """Everything a track row is filled from, whoever writes it. `vector` None means the track
    failed (`error` says why): the row is kept, so a re-run can tell the file was seen."""

    external_id: str
    model_fingerprint: str
    content_hash: str
    source: str
    title: str = ""
    artist: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    vector: np.ndarray | None = None
    duration: float | None = None
    error: str | None = None
    run_id: int | None = None

    @property
    def vector_id(self) -> int:
        return db.vector_id_for(self.external_id)


def unit_vector(vector: np.ndarray, dim: int) -> np.ndarray:
    """`vector` as float32 (dim,) at unit L2 norm; ValueError for another dimension. Stored
    vectors are unit-norm whatever the caller passed, so SQL and FAISS hold the same numbers."""
    vector = np.asarray(vector, np.float32).reshape(-1)
    if vector.shape[0] != dim:
        raise ValueError(f"vector has dimension {vector.shape[0]}, the index {dim}")
    return l2_normalise(vector)


def upsert_rows(session: Session, external_ids: Iterable[str]) -> dict[str, Track]:
    """Existing rows for these ids, plus new (unflushed) ones for the rest, in one query."""
    ids = list(dict.fromkeys(external_ids))
    rows = {r.external_id: r for r in session.scalars(
        select(Track).where(Track.external_id.in_(ids)))}
    for tid in ids:
        if tid not in rows:
            rows[tid] = Track(external_id=tid, vector_id=db.vector_id_for(tid))
            session.add(rows[tid])
    return rows


def write_tracks(session: Session, writes: Sequence[TrackWrite]) -> dict[str, Track]:
    """Insert or replace one row per write inside the caller's transaction (the job commits a
    batch at once, the service one track); returns the rows by external id, flushed."""
    rows = upsert_rows(session, (w.external_id for w in writes))
    for w in writes:
        _fill(rows[w.external_id], w)
    session.flush()
    return rows


def write_model_vectors(session: Session, fingerprint: str,
                        vectors: Mapping[int, tuple[str, np.ndarray]]) -> None:
    """Insert or replace model `fingerprint`'s vectors of tracks (by their `tracks.id`: content
    hash the vector was computed from, unit vector) inside the caller's transaction: the rows
    a model other than the row's own keeps (several models over one catalog)."""
    have = {v.track_id: v for v in session.scalars(select(TrackVector).where(
        TrackVector.track_id.in_(list(vectors)) & (TrackVector.model_fingerprint == fingerprint)))}
    for track_pk, (content_hash, vector) in vectors.items():
        row = have.get(track_pk)
        if row is None:
            row = TrackVector(track_id=track_pk, model_fingerprint=fingerprint)
            session.add(row)
        row.content_hash, row.vector = content_hash, encode_vector(vector)
    session.flush()


def _fill(row: Track, w: TrackWrite) -> None:
    row.title, row.artist, row.extra = w.title, w.artist, dict(w.metadata)
    row.source, row.content_hash, row.run_id = w.source, w.content_hash, w.run_id
    row.model_fingerprint = w.model_fingerprint
    if w.vector is None:
        row.status, row.error, row.vector, row.duration = FAILED, w.error, None, None
    else:
        row.status, row.error, row.vector = INDEXED, None, encode_vector(w.vector)
        row.duration = w.duration


class TrackRepository:
    """The track rows of one database as the service reads them; live rows (searchable ones)
    are those of the model `fingerprint`. Each call runs in its own short session."""

    def __init__(self, engine: Engine, fingerprint: str) -> None:
        self.engine, self.fingerprint = engine, fingerprint
        self.sessions = db.session_factory(engine)

    def save(self, write: TrackWrite,
             model_vectors: Mapping[str, np.ndarray] | None = None) -> TrackRecord:
        """Commit one row (inserted or replaced) with other models' vectors of it (by model
        fingerprint) in the same transaction, and return it as committed."""
        with self.sessions.begin() as session:
            row = write_tracks(session, [write])[write.external_id]
            for fingerprint, vector in (model_vectors or {}).items():
                write_model_vectors(session, fingerprint, {row.id: (write.content_hash, vector)})
            return TrackRecord.from_row(row)

    def delete(self, track_id: str) -> tuple[int, str] | None:
        """Delete the row; its (vector_id, source), or None if there was none."""
        with self.sessions.begin() as session:
            row = session.scalar(select(Track).where(Track.external_id == track_id))
            if row is None:
                return None
            found = row.vector_id, row.source
            session.execute(delete(TrackVector).where(TrackVector.track_id == row.id))
            session.delete(row)
        return found

    def uses_source(self, source: str) -> bool:
        """Whether any row still names this audio file (uploads are shared by content)."""
        with self.sessions() as session:
            return bool(session.scalar(select(func.count()).where(Track.source == source)))

    def get(self, track_id: str) -> TrackRecord | None:
        with self.sessions() as session:
            row = session.scalar(select(Track).where(Track.external_id == track_id))
            return TrackRecord.from_row(row) if row else None

    def page(self, offset: int = 0, limit: int = 50) -> tuple[list[TrackRecord], int]:
        """A page of all rows (indexed and failed) in insertion order, and the total count."""
        with self.sessions() as session:
            total = session.scalar(select(func.count()).select_from(Track)) or 0
            rows = session.scalars(select(Track).order_by(Track.id).offset(offset).limit(limit))
            return [TrackRecord.from_row(r) for r in rows], total

    def page_with_vectors(self, limit: int) -> tuple[list[TrackRecord], np.ndarray, int]:
        """The live rows among the first `limit` rows (insertion order), their vectors (n, dim)
        and the total row count: two queries whatever `limit` is (the catalog map's sample)."""
        with self.sessions() as session:
            total = session.scalar(select(func.count()).select_from(Track)) or 0
            first = select(Track.id).order_by(Track.id).limit(limit)
            rows = session.scalars(select(Track).where(Track.id.in_(first)
                                                       & live_rows(self.fingerprint))
                                   .order_by(Track.id)).all()
            records = [TrackRecord.from_row(r) for r in rows]
            vectors = np.stack([decode_vector(r.vector) for r in rows]) if rows else \
                np.zeros((0, 1), np.float32)
        return records, vectors, total

    def by_vector_ids(self, ids: Sequence[int]) -> dict[int, TrackRecord]:
        """Records of these FAISS ids (one query); ids without a row are left out."""
        with self.sessions() as session:
            rows = session.scalars(select(Track).where(Track.vector_id.in_(list(ids))))
            return {r.vector_id: TrackRecord.from_row(r) for r in rows}

    def vector_of(self, track_id: str, fingerprint: str | None = None) -> np.ndarray | None:
        """The stored unit vector of a live track (query by example) from model `fingerprint`
        (default: the repository's own), wherever that model's vector is kept."""
        fingerprint = fingerprint or self.fingerprint
        with self.sessions() as session:
            raw = session.scalar(select(Track.vector).where(
                (Track.external_id == track_id) & live_rows(fingerprint)))
            if raw is None:
                raw = session.scalar(select(TrackVector.vector).join(
                    Track, TrackVector.track_id == Track.id).where(
                    (Track.external_id == track_id) & side_rows(fingerprint)))
        return decode_vector(raw) if raw is not None else None

    def status_counts(self) -> dict[str, int]:
        """Rows per status ("indexed", "failed")."""
        with self.sessions() as session:
            return dict(session.execute(
                select(Track.status, func.count()).group_by(Track.status)).all())

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any driver error means "not reachable"
            return False
