"""The catalog as the HTTP service uses it: track rows, FAISS index and uploads of one model.

Why a facade at all: the operations that touch more than one store need an order, and the
order is the durability contract. Writes (`add_track`, `delete_track`) commit SQL first, vector
included, and only then touch the in-memory FAISS index, so a crash between the two loses
nothing: the next `open()` (or `refresh()`) rebuilds the difference from SQL. Searches read ids
from FAISS and records from SQL. Everything else lives in the parts, which callers use
directly for plain reads:

- `repository` (index/repository.py): SQL reads and writes of track rows;
- `vectors` (index/vector_store.py): the FAISS index behind its lock, load/save/refresh;
- `uploads` (index/uploads.py): content-addressed upload files and the streaming path checks.

Thread-safe: SQL work runs in per-call sessions, FAISS access under the store's lock, and the
CPU-heavy embedding outside both (or in the caller's own pool when it passes `vector=`).
Track ids are the stable external ids (strings); `vector_id` is internal. `open()` raises
`ModelMismatchError` when the saved index was built by another model.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index import db
from index.repository import TrackRecord, TrackRepository, TrackWrite, unit_vector
from index.schema import FAILED
from index.uploads import UploadStore, content_digest
from index.vector_store import INDEX_DIR, VectorStore
from index.vectors import ModelMismatchError
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder

__all__ = ["Catalog", "ModelMismatchError", "TrackRecord"]


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
        self._engine = db.make_engine(self.db_url)
        self.repository = TrackRepository(self._engine, self.fingerprint)
        self.vectors = VectorStore(self.repository.sessions, self.data_dir / INDEX_DIR,
                                   self.fingerprint, self.dim, index_factory,
                                   save_every=save_every)
        self.uploads = UploadStore(self.data_dir)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self, migrate: bool = True) -> None:
        """Migrate (optional), load the saved index and reconcile it with SQL. Raises
        ModelMismatchError for another model's index."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            db.migrate(self.db_url)
        self.vectors.open()

    def refresh(self) -> int:
        """Pick up rows committed by others (e.g. a running `cvsm index`); returns changes."""
        return self.vectors.refresh()

    def save(self) -> None:
        """Write the FAISS file (SQL already holds everything)."""
        self.vectors.save()

    def close(self) -> None:
        """Save unsaved FAISS writes and release the database connections."""
        self.vectors.close()
        self._engine.dispose()

    @property
    def index_dir(self) -> Path:
        return self.vectors.folder

    # -- writes ------------------------------------------------------------------------------
    def add_track(self, samples: np.ndarray, *, source_bytes: bytes, filename: str,
                  external_id: str | None = None, title: str = "", artist: str = "",
                  metadata: dict[str, Any] | None = None,
                  vector: np.ndarray | None = None) -> TrackRecord:
        """Store the uploaded file under data_dir/audio (content-addressed), embed `samples`
        (mono 16 kHz) unless `vector` is given, commit the row with its vector, then index it.
        An existing `external_id` is replaced. Returns the committed record."""
        digest = content_digest(source_bytes)
        path = self.uploads.store(source_bytes, digest, filename)
        if vector is None:
            vector = self.embedder.embed_waveform(samples)
        write = TrackWrite(external_id=external_id or uuid.uuid4().hex,
                           model_fingerprint=self.fingerprint, content_hash=digest,
                           source=self.uploads.source_of(path), title=title, artist=artist,
                           metadata=dict(metadata or {}), vector=unit_vector(vector, self.dim),
                           duration=len(samples) / SAMPLE_RATE)
        record = self.repository.save(write)
        self.vectors.add(write.vector_id, write.vector, digest)
        return record

    def delete_track(self, track_id: str) -> bool:
        """Delete the row (and its stored upload, if no other row uses it); False if unknown."""
        found = self.repository.delete(track_id)
        if found is None:
            return False
        vector_id, source = found
        if not self.repository.uses_source(source):
            self.uploads.discard(source)
        self.vectors.remove(vector_id)
        return True

    # -- reads across stores -----------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, exclude_artist: str | None = None,
               min_score: float | None = None,
               exclude_ids: Sequence[str] = ()) -> list[tuple[TrackRecord, float]]:
        """The k most similar tracks by cosine, best first, after the filters (artist compared
        case-insensitively). Fetches more candidates from FAISS until k survive or it runs out."""
        excluded, artist = set(exclude_ids), (exclude_artist or "").strip().casefold()
        fetch = k + len(excluded) + (4 * k if artist else 0)
        while True:
            ids, scores, total = self.vectors.search(vector, fetch)
            hits = self._records(ids, scores)
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
        rows = self.repository.by_vector_ids(ids)
        return [(rows[i], float(s)) for i, s in zip(ids, scores, strict=True) if i in rows]

    def audio_path(self, track_id: str) -> tuple[bool, Path | None]:
        """(whether the track exists, its audio file if the service may stream it): the mixture,
        or the vocals stem for stem-only rows (index/uploads.py). The id only selects a row (a
        bound SQL parameter): it never becomes part of a path."""
        record = self.repository.get(track_id)
        if record is None:
            return False, None
        return True, self.uploads.readable(record.source)

    def stats(self) -> dict[str, Any]:
        """count (vectors searchable), tracks / failed (SQL rows), dim, fingerprint, index_type."""
        by_status = self.repository.status_counts()
        return {"count": self.vectors.count, "tracks": sum(by_status.values()),
                "failed": by_status.get(FAILED, 0), "dim": self.dim,
                "fingerprint": self.fingerprint, "index_type": self.vectors.index_type}
