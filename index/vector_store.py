"""The service's in-memory FAISS index behind one lock, kept in agreement with SQL.

Why a lock and not more: FAISS indexes are not safe for concurrent writes, and a search takes
milliseconds, so one lock serialises every access; SQL work (the id scan of `refresh`, reading
records for hits) runs outside it. The FAISS file is only a cache of the committed rows
(index/store.py): it is saved by `save()`/`close()` and every `save_every` writes, and whatever
a crash loses is rebuilt from SQL by the next `open()` or `refresh()`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from sqlalchemy.orm import sessionmaker

from index.mapped import MappedIndex
from index.store import content_tag, reconcile, sql_tags, sync_index
from index.vectors import VectorIndex

#: The FAISS files' folder under a data dir (shared with the batch job and `cvsm merge`).
INDEX_DIR = "index"
#: Under a data dir, one folder per other model served beside the catalog's own (by fingerprint).
MODELS_DIR = "index-models"


def index_folder(data_dir: Path, fingerprint: str | None = None) -> Path:
    """Where a model's FAISS files live: `index/` for the catalog's own model (None), else
    `index-models/<fingerprint>/` (several models side by side over one catalog)."""
    data_dir = Path(data_dir)
    return data_dir / INDEX_DIR if fingerprint is None else data_dir / MODELS_DIR / fingerprint


class VectorStore:
    """The FAISS index of model `fingerprint` over the rows reachable through `sessions`."""

    def __init__(self, sessions: sessionmaker, folder: Path, fingerprint: str, dim: int,
                 factory: str | None = None, *, save_every: int = 100,
                 mmap: bool = False) -> None:
        """`factory` (e.g. "HNSW32,Flat") forces the FAISS type, otherwise it is chosen by
        catalog size when the index is built; `mmap` maps the saved file (index/mapped.py)."""
        self.sessions, self.folder = sessions, Path(folder)
        self.fingerprint, self.dim = fingerprint, dim
        self.factory, self.save_every, self.mmap = factory, save_every, mmap
        self._lock = threading.Lock()
        self._index: VectorIndex | MappedIndex | None = None
        self._unsaved = 0

    def open(self) -> None:
        """Load the saved index and reconcile it with SQL; saves if that changed anything.
        Raises ModelMismatchError when the saved index is another model's."""
        index, changes = sync_index(self.sessions, self.folder, self.fingerprint, self.dim,
                                    self.factory, self.mmap)
        with self._lock:
            self._index = index
            if changes:
                index.save(self.folder)

    def refresh(self) -> int:
        """Pick up rows committed by others (e.g. a running `cvsm index`); returns changes.
        The full id scan runs outside the lock; only the changed vectors are read inside it."""
        with self.sessions() as session:
            want = sql_tags(session, self.fingerprint)
        with self._lock:
            return reconcile(self._require(), self.sessions, want)

    def apply(self, vector_ids: set[int]) -> int:
        """Bring just these ids in line with SQL (the change feed's ids); returns changes."""
        with self.sessions() as session:
            want = sql_tags(session, self.fingerprint, vector_ids)
        with self._lock:
            changed = reconcile(self._require(), self.sessions, want, only=vector_ids)
            if changed:
                self._count_write()
            return changed

    def save(self) -> None:
        """Write the FAISS file + manifest atomically (SQL already holds everything)."""
        with self._lock:
            self._require().save(self.folder)
            self._unsaved = 0

    def close(self) -> None:
        """Save if there are writes the file lacks (skipped when never opened)."""
        if self._index is not None and self._unsaved:
            self.save()

    def add(self, vector_id: int, vector: np.ndarray, content_hash: str) -> None:
        """Index one committed row's vector (replacing an older one under the same id)."""
        with self._lock:
            self._require().add(np.array([vector_id]), np.asarray(vector)[None, :],
                                np.array([content_tag(content_hash)]))
            self._count_write()

    def remove(self, vector_id: int) -> None:
        with self._lock:
            self._require().remove(np.array([vector_id]))
            self._count_write()

    def search(self, vector: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(ids, scores) of the `fetch` nearest by cosine (-1 marks empty slots), and how many
        vectors the index held, so a caller that filters knows when to stop fetching more."""
        with self._lock:
            index = self._require()
            total = index.ntotal
            scores, ids = index.search(np.asarray(vector, np.float32)[None, :], fetch)
        return ids[0], scores[0], total

    @property
    def count(self) -> int:
        """Searchable vectors."""
        with self._lock:
            return self._require().ntotal

    @property
    def index_type(self) -> str:
        """The FAISS factory string of the current index."""
        with self._lock:
            return self._require().factory

    def _require(self) -> VectorIndex | MappedIndex:
        if self._index is None:
            raise RuntimeError("VectorStore.open() has not been called")
        return self._index

    def _count_write(self) -> None:
        self._unsaved += 1
        if self._unsaved >= self.save_every:
            self._require().save(self.folder)
            self._unsaved = 0
