"""The catalog facade the HTTP service uses: SQL rows + FAISS index kept in agreement.

Contract (for app/ and anyone else):
- `Catalog(db_url, data_dir, embedder)`, then `open()` (runs migrations unless `migrate=False`,
  loads the saved FAISS index and reconciles it with the committed rows), `close()` (saves).
- Writes (`add_track`, `delete_track`) commit SQL first, vector included, and only then touch
  the in-memory FAISS index; the FAISS file is saved by `save()`/`close()` and every
  `save_every` writes. A crash between the two loses nothing: the next `open()` (or `refresh()`)
  rebuilds the difference from SQL.
- Thread-safe: one lock serialises FAISS access (searches take milliseconds); SQL work runs in
  per-call sessions outside it. CPU-heavy embedding happens outside the lock, or in the caller's
  own pool when it passes `vector=`.
- Track ids are the stable external ids (strings); `vector_id` is internal.
- Raises `ModelMismatchError` from `open()` when the saved index was built by another model.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select, text

from index import db
from index.schema import FAILED, INDEXED, Track
from index.store import (
    content_tag,
    decode_vector,
    encode_vector,
    live_rows,
    reconcile,
    sql_tags,
    sync_index,
)
from index.vectors import ModelMismatchError, VectorIndex
from model.audio.decode import AUDIO_EXTENSIONS
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder
from model.files import atomic_write_bytes

__all__ = ["Catalog", "ModelMismatchError", "TrackRecord"]

INDEX_DIR = "index"
AUDIO_DIR = "audio"


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


class Catalog:
    """SQL rows + FAISS index of one model (the embedder's fingerprint), kept in agreement."""

    def __init__(self, db_url: str | None, data_dir: Path, embedder: TrackEmbedder,
                 index_factory: str | None = None, *, save_every: int = 100) -> None:
        """`db_url` None means SQLite under `data_dir`; `index_factory` (e.g. "HNSW32,Flat")
        forces the FAISS type, otherwise it is chosen by catalog size at build time."""
        self.data_dir = Path(data_dir)
        self.db_url = db_url or db.sqlite_url(self.data_dir)
        self.embedder = embedder
        self.fingerprint, self.dim = embedder.fingerprint, embedder.dim
        self.index_factory, self.save_every = index_factory, save_every
        self._lock = threading.Lock()
        self._index: VectorIndex | None = None
        self._unsaved = 0
        self._engine = db.make_engine(self.db_url)
        self._sessions = db.session_factory(self._engine)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self, migrate: bool = True) -> None:
        """Migrate (optional), load the saved index and reconcile it with SQL; saves if the
        reconciliation changed anything. Raises ModelMismatchError for another model's index."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            db.migrate(self.db_url)
        index, changes = sync_index(self._sessions, self.index_dir, self.fingerprint, self.dim,
                                    self.index_factory)
        with self._lock:
            self._index = index
            if changes:
                index.save(self.index_dir)

    def refresh(self) -> int:
        """Pick up rows committed by others (e.g. a running `cvsm index`); returns changes.
        The full id scan runs outside the lock; only the changed vectors are read inside it."""
        with self._sessions() as session:
            want = sql_tags(session, self.fingerprint)
        with self._lock:
            return reconcile(self._require(), self._sessions, want)

    def save(self) -> None:
        """Write the FAISS file + manifest atomically (SQL already holds everything)."""
        with self._lock:
            self._require().save(self.index_dir)
            self._unsaved = 0

    def close(self) -> None:
        if self._index is not None and self._unsaved:
            self.save()
        self._engine.dispose()

    @property
    def index_dir(self) -> Path:
        return self.data_dir / INDEX_DIR

    # -- writes ------------------------------------------------------------------------------
    def add_track(self, samples: np.ndarray, *, source_bytes: bytes, filename: str,
                  external_id: str | None = None, title: str = "", artist: str = "",
                  metadata: dict[str, Any] | None = None,
                  vector: np.ndarray | None = None) -> TrackRecord:
        """Store the uploaded file under data_dir/audio (content-addressed), embed `samples`
        (mono 16 kHz) unless `vector` is given, commit the row with its vector, then index it.
        An existing `external_id` is replaced. Returns the committed record."""
        digest = hashlib.sha256(source_bytes).hexdigest()
        path = self._store_audio(source_bytes, digest, filename)
        if vector is None:
            vector = self.embedder.embed_waveform(samples)
        vector = np.asarray(vector, np.float32).reshape(-1)
        if vector.shape[0] != self.dim:
            raise ValueError(f"vector has dimension {vector.shape[0]}, the index {self.dim}")
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        tid = external_id or uuid.uuid4().hex
        with self._sessions.begin() as session:
            row = session.scalar(select(Track).where(Track.external_id == tid))
            if row is None:
                row = Track(external_id=tid, vector_id=db.vector_id_for(tid))
                session.add(row)
            row.title, row.artist, row.extra = title, artist, dict(metadata or {})
            row.source, row.duration = str(path), len(samples) / SAMPLE_RATE
            row.content_hash, row.status, row.error = digest, INDEXED, None
            row.vector, row.model_fingerprint = encode_vector(vector), self.fingerprint
            session.flush()
            record, vid = TrackRecord.from_row(row), row.vector_id
        with self._lock:
            self._require().add(np.array([vid]), vector[None, :], np.array([content_tag(digest)]))
            self._count_write()
        return record

    def delete_track(self, track_id: str) -> bool:
        """Delete the row (and its stored upload, if no other row uses it); False if unknown."""
        with self._sessions.begin() as session:
            row = session.scalar(select(Track).where(Track.external_id == track_id))
            if row is None:
                return False
            vid, source = row.vector_id, row.source
            session.delete(row)
        with self._sessions() as session:
            shared = session.scalar(select(func.count()).where(Track.source == source))
        if not shared and self._is_upload(Path(source)):
            Path(source).unlink(missing_ok=True)
        with self._lock:
            self._require().remove(np.array([vid]))
            self._count_write()
        return True

    # -- reads -------------------------------------------------------------------------------
    def get_track(self, track_id: str) -> TrackRecord | None:
        with self._sessions() as session:
            row = session.scalar(select(Track).where(Track.external_id == track_id))
            return TrackRecord.from_row(row) if row else None

    def list_tracks(self, offset: int = 0, limit: int = 50) -> tuple[list[TrackRecord], int]:
        """A page of all rows (indexed and failed) in insertion order, and the total count."""
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(Track)) or 0
            rows = session.scalars(select(Track).order_by(Track.id).offset(offset).limit(limit))
            return [TrackRecord.from_row(r) for r in rows], total

    def search(self, vector: np.ndarray, k: int, *, exclude_artist: str | None = None,
               min_score: float | None = None,
               exclude_ids: Sequence[str] = ()) -> list[tuple[TrackRecord, float]]:
        """The k most similar tracks by cosine, best first, after the filters (artist compared
        case-insensitively). Fetches more candidates from FAISS until k survive or it runs out."""
        excluded, artist = set(exclude_ids), (exclude_artist or "").strip().casefold()
        fetch = k + len(excluded) + (4 * k if artist else 0)
        while True:
            with self._lock:
                index = self._require()
                total = index.ntotal
                scores, ids = index.search(np.asarray(vector, np.float32)[None, :], fetch)
            hits = self._records(ids[0], scores[0])
            out = [(rec, s) for rec, s in hits
                   if rec.id not in excluded and not (artist and rec.artist.casefold() == artist)
                   and (min_score is None or s >= min_score)]
            below = min_score is not None and len(hits) and hits[-1][1] < min_score
            if len(out) >= k or fetch >= total or below:
                return out[:k]
            fetch = min(total, fetch * 4)

    def _records(self, ids: np.ndarray, scores: np.ndarray) -> list[tuple[TrackRecord, float]]:
        keep = ids >= 0
        ids, scores = ids[keep].tolist(), scores[keep].tolist()
        with self._sessions() as session:
            rows = {r.vector_id: r for r in session.scalars(
                select(Track).where(Track.vector_id.in_(ids)))}
        return [(TrackRecord.from_row(rows[i]), float(s)) for i, s in zip(ids, scores, strict=True)
                if i in rows]

    def vector_of(self, track_id: str) -> np.ndarray | None:
        """The stored unit vector of an indexed track of this model (query by example)."""
        with self._sessions() as session:
            raw = session.scalar(select(Track.vector).where(
                (Track.external_id == track_id) & live_rows(self.fingerprint)))
        return decode_vector(raw) if raw is not None else None

    def audio_path(self, track_id: str) -> Path | None:
        """The track's audio file (the mixture; the vocals stem for stem-only catalog rows),
        resolved; None for unknown tracks, URIs, relative paths, files that no longer exist,
        and files registered inside the data dir that resolve outside it (a planted symlink).
        The id only selects a row (a bound SQL parameter): it never becomes part of a path."""
        record = self.get_track(track_id)
        if record is None or not record.source or "://" in record.source:
            return None
        registered = Path(record.source)
        if not registered.is_absolute():
            return None
        path, home = registered.resolve(), self.data_dir.resolve()
        if registered.is_relative_to(home) and not path.is_relative_to(home):
            return None
        return path if path.is_file() else None

    def stats(self) -> dict[str, Any]:
        """count (vectors searchable), tracks / failed (SQL rows), dim, fingerprint, index_type."""
        with self._sessions() as session:
            by_status = dict(session.execute(
                select(Track.status, func.count()).group_by(Track.status)).all())
        with self._lock:
            index = self._require()
            count, factory = index.ntotal, index.factory
        return {"count": count, "tracks": sum(by_status.values()),
                "failed": by_status.get(FAILED, 0), "dim": self.dim,
                "fingerprint": self.fingerprint, "index_type": factory}

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - any driver error means "not reachable"
            return False

    def projection(self, limit: int = 2000) -> list[tuple[TrackRecord, float, float]]:
        """A 2-D PCA map of up to `limit` indexed tracks (for a catalog scatter plot)."""
        with self._sessions() as session:
            rows = session.scalars(select(Track).where(live_rows(self.fingerprint))
                                   .order_by(Track.id).limit(limit)).all()
            records = [TrackRecord.from_row(r) for r in rows]
            vecs = np.stack([decode_vector(r.vector) for r in rows]) if rows else None
        if vecs is None:
            return []
        centred = vecs - vecs.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T if len(vt) >= 2 else np.zeros((len(vecs), 2))
        return [(rec, float(x), float(y)) for rec, (x, y) in zip(records, xy, strict=True)]

    # -- helpers -----------------------------------------------------------------------------
    def _require(self) -> VectorIndex:
        if self._index is None:
            raise RuntimeError("Catalog.open() has not been called")
        return self._index

    def _count_write(self) -> None:
        self._unsaved += 1
        if self._unsaved >= self.save_every:
            self._index.save(self.index_dir)
            self._unsaved = 0

    def _store_audio(self, data: bytes, digest: str, filename: str) -> Path:
        """Content-addressed copy under data_dir/audio; the client's name only lends a known
        extension, never a path."""
        ext = Path(re.sub(r"[^A-Za-z0-9._-]", "", filename or "")).suffix.lower()
        folder = self.data_dir / AUDIO_DIR
        folder.mkdir(parents=True, exist_ok=True)
        path = folder.resolve() / f"{digest}{ext if ext in AUDIO_EXTENSIONS else '.bin'}"
        if path.is_symlink() or not path.is_file():  # a planted link is replaced, not followed
            atomic_write_bytes(path, data)  # the rename replaces a link; no partial file left
        return path

    def _is_upload(self, path: Path) -> bool:
        return path.resolve().parent == (self.data_dir / AUDIO_DIR).resolve()
