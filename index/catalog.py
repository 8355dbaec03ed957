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

Several models side by side (issue 16): the catalog's own model ("default") keeps its vectors in
the track rows and its index in `index/`; each model `attach`ed under a name keeps its vectors of
the same rows in `track_vectors` (written by `cvsm index --extra-model`, or here on upload) and
its own index in `index-models/<fingerprint>/`. Searches name the model; rows are shared.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index import db
from index.changes import ChangeFeed
from index.repository import TrackRecord, TrackRepository, TrackWrite, unit_vector
from index.schema import FAILED
from index.uploads import UploadStore, content_digest
from index.vector_store import INDEX_DIR, VectorStore, index_folder
from index.vectors import ModelMismatchError
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder

__all__ = ["DEFAULT_MODEL", "Catalog", "ModelMismatchError", "ServedModel", "TrackRecord",
           "UnknownModelError"]

#: The name searches use for the catalog's own model.
DEFAULT_MODEL = "default"
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class UnknownModelError(LookupError):
    """A search named a model the catalog does not serve."""


@dataclass(frozen=True)
class ServedModel:
    """A model the catalog answers searches with: its embedder and its FAISS index."""

    name: str
    embedder: TrackEmbedder
    vectors: VectorStore

    @property
    def fingerprint(self) -> str:
        return self.embedder.fingerprint


class Catalog:
    """SQL rows + FAISS index of one model (the embedder's fingerprint), kept in agreement."""

    def __init__(self, db_url: str | None, data_dir: Path, embedder: TrackEmbedder,
                 index_factory: str | None = None, *, save_every: int = 100,
                 mmap: bool = False) -> None:
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
                                   save_every=save_every, mmap=mmap)
        self.uploads = UploadStore(self.data_dir)
        self.changes = ChangeFeed(self.repository.sessions)
        self.index_factory, self._save_every, self._mmap = index_factory, save_every, mmap
        self.models = {DEFAULT_MODEL: ServedModel(DEFAULT_MODEL, embedder, self.vectors)}

    def attach(self, name: str, embedder: TrackEmbedder) -> ServedModel:
        """Serve another model's index of the same rows under `name` (before `open()`)."""
        if not MODEL_NAME.fullmatch(name) or name in self.models:
            raise ValueError(f"model name {name!r} is taken or not 1-64 letters, digits, "
                             "'_', '.', '-'")
        if any(m.fingerprint == embedder.fingerprint for m in self.models.values()):
            raise ValueError(f"model {embedder.fingerprint} is already served")
        store = VectorStore(self.repository.sessions,
                            index_folder(self.data_dir, embedder.fingerprint),
                            embedder.fingerprint, embedder.dim, self.index_factory,
                            save_every=self._save_every, mmap=self._mmap)
        self.models[name] = ServedModel(name, embedder, store)
        return self.models[name]

    def model(self, name: str | None = None) -> ServedModel:
        """The served model called `name` (None: the default); UnknownModelError otherwise."""
        try:
            return self.models[name or DEFAULT_MODEL]
        except KeyError:
            raise UnknownModelError(f"no model named {name!r}; served: "
                                    f"{', '.join(self.models)}") from None

    @property
    def extra_models(self) -> list[ServedModel]:
        return [m for m in self.models.values() if m.name != DEFAULT_MODEL]

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self, migrate: bool = True) -> None:
        """Migrate (optional), load the saved index and reconcile it with SQL. Raises
        ModelMismatchError for another model's index."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if migrate:
            db.migrate(self.db_url)
        self.changes.start()  # before the full reconcile: nothing committed meanwhile is lost
        for served in self.models.values():
            served.vectors.open()

    def refresh(self) -> int:
        """Pick up rows committed by others (e.g. a running `cvsm index`) by a full comparison
        with SQL; returns changes. The safety net behind `follow`."""
        return sum(served.vectors.refresh() for served in self.models.values())

    def follow(self) -> int:
        """Apply the changes others committed since the last call (the change feed: another
        API replica's uploads and deletions, a running job); cheap when nothing changed."""
        ids = self.changes.poll()
        if not ids:
            return 0
        return sum(served.vectors.apply(ids) for served in self.models.values())

    def save(self) -> None:
        """Write the FAISS files (SQL already holds everything)."""
        for served in self.models.values():
            served.vectors.save()

    def close(self) -> None:
        """Save unsaved FAISS writes and release the database connections."""
        for served in self.models.values():
            served.vectors.close()
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
        (mono 16 kHz) unless `vector` is given, and with every attached model too; commit the
        row with all its vectors in one transaction, then index them. An existing
        `external_id` is replaced. Returns the committed record."""
        digest = content_digest(source_bytes)
        path = self.uploads.store(source_bytes, digest, filename)
        if vector is None:
            vector = self.embedder.embed_waveform(samples)
        write = TrackWrite(external_id=external_id or uuid.uuid4().hex,
                           model_fingerprint=self.fingerprint, content_hash=digest,
                           source=self.uploads.source_of(path), title=title, artist=artist,
                           metadata=dict(metadata or {}), vector=unit_vector(vector, self.dim),
                           duration=len(samples) / SAMPLE_RATE)
        others = {m.fingerprint: unit_vector(m.embedder.embed_waveform(samples), m.embedder.dim)
                  for m in self.extra_models}
        record = self.repository.save(write, others)
        self.vectors.add(write.vector_id, write.vector, digest)
        for served in self.extra_models:
            served.vectors.add(write.vector_id, others[served.fingerprint], digest)
        return record

    def delete_track(self, track_id: str) -> bool:
        """Delete the row (and its stored upload, if no other row uses it); False if unknown."""
        found = self.repository.delete(track_id)
        if found is None:
            return False
        vector_id, source = found
        if not self.repository.uses_source(source):
            self.uploads.discard(source)
        for served in self.models.values():
            served.vectors.remove(vector_id)
        return True

    # -- reads across stores -----------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int, *, exclude_artist: str | None = None,
               min_score: float | None = None,
               exclude_ids: Sequence[str] = (), exclude_song: str | None = None,
               model: str | None = None) -> list[tuple[TrackRecord, float]]:
        """The k most similar tracks by cosine in the index of `model` (default: the catalog's
        own), best first, after the filters (artist compared case-insensitively; song by the
        `song` metadata, so other excerpts of the query's recording stay out). Fetches more
        candidates from FAISS until k survive or it runs out."""
        store = self.model(model).vectors
        excluded, artist = set(exclude_ids), (exclude_artist or "").strip().casefold()
        fetch = k + len(excluded) + (4 * k if artist or exclude_song else 0)
        while True:
            ids, scores, total = store.search(vector, fetch)
            hits = self._records(ids, scores)
            out = [(rec, s) for rec, s in hits
                   if rec.id not in excluded and not (artist and rec.artist.casefold() == artist)
                   and not (exclude_song and rec.metadata.get("song") == exclude_song)
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

    def model_stats(self) -> list[dict[str, Any]]:
        """name, fingerprint, dim, count (vectors searchable) and index_type of every model."""
        return [{"name": m.name, "fingerprint": m.fingerprint, "dim": m.embedder.dim,
                 "count": m.vectors.count, "index_type": m.vectors.index_type}
                for m in self.models.values()]
