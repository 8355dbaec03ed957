"""A memory-mapped index for catalogs larger than a replica's RAM (issue 15, `CVSM_INDEX_MMAP`).

FAISS maps a saved index read-only (`IO_FLAG_MMAP_IFC`: the codes, graph storage and re-ranking
vectors stay in the page cache, shared by every process that maps the file, and out of the
process's own memory); adding to or removing from a mapped index aborts the process. So a
`MappedIndex` never writes to the mapped base: replacements and deletions of base vectors are
soft (the base is searched with those ids excluded), and vectors added since the base was saved
live in a small exact in-memory index (the delta); a search merges both. `save` writes nothing:
the base file is the batch job's, and the delta is rebuilt from SQL (the source of truth) when
the index is next opened, as any change since the file was written is. Run `cvsm index` to fold
a grown delta into a new base file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from index.vectors import IndexManifest, VectorIndex


class MappedIndex:
    """The read-only mapped `base` plus an in-memory exact `delta`, with VectorIndex's
    interface as the stores use it."""

    def __init__(self, base: VectorIndex) -> None:
        self.base = base
        self.delta = VectorIndex(base.dim, base.fingerprint, "Flat")
        self.dim, self.fingerprint, self.factory = base.dim, base.fingerprint, base.factory
        # One tags map: this object's (live base ids and delta ids); the base's is handed over.
        self.tags: dict[int, int] = base.tags
        self.base.tags = {}

    @property
    def ntotal(self) -> int:
        return self.base.ntotal + self.delta.ntotal

    @property
    def removable(self) -> bool:
        return True  # every removal is possible (soft in the base)

    def ids(self) -> np.ndarray:
        return np.concatenate([self.base.ids(), self.delta.ids()])

    def _hide(self, ids: np.ndarray) -> None:
        """Soft-delete live base ids (never `remove_ids` on the mapped base): an id in the tags
        map but not in the delta is a live base id."""
        self.base.deleted.update(i for i in ids.tolist()
                                 if i in self.tags and i not in self.delta.tags)

    def add(self, ids: np.ndarray, vectors: np.ndarray, tags: np.ndarray | None = None) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        tags = np.zeros(len(ids), np.int64) if tags is None else np.asarray(tags, np.int64)
        self._hide(ids)
        self.delta.add(ids, vectors, tags)
        self.tags.update(zip(ids.tolist(), tags.tolist(), strict=True))

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64)
        before = self.ntotal
        self._hide(ids)
        self.delta.remove(ids)
        for i in ids.tolist():
            self.tags.pop(i, None)
        return before - self.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k best of the base (hidden ids excluded) and the delta, merged by score."""
        if not self.delta.ntotal:
            return self.base.search(queries, k)
        parts = [self.delta.search(queries, k)]
        if self.base.ntotal:
            parts.append(self.base.search(queries, k))
        scores = np.concatenate([p[0] for p in parts], axis=1)
        ids = np.concatenate([p[1] for p in parts], axis=1)
        scores = np.where(ids >= 0, scores, -np.inf)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return (np.take_along_axis(scores, order, axis=1).astype(np.float32),
                np.take_along_axis(ids, order, axis=1))

    def save(self, folder: Path) -> IndexManifest | None:
        """Nothing to write: the base file stays the job's; the delta comes back from SQL."""
        return None
