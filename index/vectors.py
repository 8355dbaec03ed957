"""FAISS vector index: cosine search on L2-normalised vectors, addressed by the tracks' vector ids.

Every index is an `IndexIDMap2` over an index built from a factory string: exact (`Flat`) for small
catalogs, HNSW over a PCA projection with exact re-ranking for large ones, OPQ+IVF+PQ re-ranked on
8-bit vectors for very large ones (`choose_factory`). Vectors are unit-norm, so cosine order is
inner-product order and also L2 order; factories with a PCA step search by L2 (PCA centres the
data, which inner products would not survive) and their distances are turned back into cosines, so
every index answers in the same score scale. Removal uses `remove_ids` where the inner index
supports it; HNSW cannot remove, so deleted ids are kept out of results with an ID selector (soft
delete) until the next rebuild. Each id carries a tag (from the track's content hash) saved in a
sidecar, so a reader can tell exactly which stored vectors are stale against SQL. `save` writes the
FAISS file and the tags and then a manifest naming the model fingerprint, dimension and count, each
via temp file + rename, the manifest last (it names the files): a reader never sees a half-written
set. `load` refuses an index built by another model.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from model.audio.signal import l2_normalise
from model.files import atomic_target, atomic_write_bytes

MANIFEST = "index.json"
#: Exact search up to this many vectors; HNSW up to LARGE; compressed IVF-PQ with re-ranking
#: beyond.
EXACT_MAX = 50_000
LARGE = 5_000_000
#: HNSW's graph is built over this many PCA components: real CVSM embeddings keep 99.6% of
#: their variance in 128 (docs/benchmarks.md), and 10x fewer dimensions make the graph 10x
#: cheaper to build and walk; exact re-ranking over the full vectors restores the order.
PCA_DIM = 128
#: At 10^6 vectors (docs/benchmarks.md): recall@10 0.985 at 0.96 ms on 32-d-intrinsic vectors,
#: 0.998 at 128 on vectors drawn like real embeddings; 64 would lose the former (0.82).
HNSW_EF_SEARCH = 256
IVF_NPROBE = 64
#: Re-ranking depth (k x this many candidates scored exactly), per base index type
#: (benchmarks: IVF-PQ 0.71 -> 0.79 recall from 32 to 64; PCA+HNSW: 2, 4 and 8 tie).
REFINE_K_FACTOR = {"hnsw": 4, "ivf": 16}
#: Past LARGE: a learnt rotation to 256 dims, 64-byte PQ codes in an IVF, re-ranked on 8-bit
#: scalar-quantised vectors: 1.3 GB per 10^6 vectors, recall@10 0.974 at 0.70 ms (nprobe 64,
#: k_factor 16), against 5.0 GB, 0.954 and 1.55 ms for IVF-PQ re-ranked on the full vectors
#: (docs/scale.md, measured at 10^6 on vectors drawn like real embeddings).
OPQ_DIM = 256


class ModelMismatchError(RuntimeError):
    """The index on disk was built with another model (embeddings are not comparable)."""


def choose_factory(n: int, dim: int = 1280) -> str:
    """FAISS factory string (inner part, without IDMap2) fitting `n` vectors of `dim`."""
    if n <= EXACT_MAX:
        return "Flat"
    if n <= LARGE:
        return f"PCA{PCA_DIM},HNSW32,RFlat" if dim >= 2 * PCA_DIM else "HNSW32,Flat"
    nlist = int(min(65536, max(1024, 4 * np.sqrt(n))))
    if dim >= 4 * OPQ_DIM:
        return f"OPQ64_{OPQ_DIM},IVF{nlist},PQ64,Refine(SQ8)"
    return f"IVF{nlist},PQ64,RFlat"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows at unit L2 norm as FAISS wants them (2-D, float32, C-contiguous): inner product =
    cosine."""
    return np.ascontiguousarray(l2_normalise(np.atleast_2d(vectors), axis=1))


@dataclass(frozen=True)
class IndexManifest:
    fingerprint: str
    dim: int
    count: int
    factory: str
    file: str
    tags: str
    saved_at: float


class VectorIndex:
    """An ID-mapped FAISS index plus the model fingerprint its vectors came from. Not thread-safe
    on its own: `index.vector_store.VectorStore` serialises access."""

    def __init__(self, dim: int, fingerprint: str, factory: str = "Flat") -> None:
        self.dim, self.fingerprint, self.factory = dim, fingerprint, factory
        metric = faiss.METRIC_L2 if "PCA" in factory else faiss.METRIC_INNER_PRODUCT
        inner = faiss.index_factory(dim, factory, metric)
        self.index = faiss.IndexIDMap2(inner)
        self.deleted: set[int] = set()
        self.tags: dict[int, int] = {}
        self._tune()

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, fingerprint: str, dim: int,
              factory: str | None = None, tags: np.ndarray | None = None,
              train_size: int = 200_000) -> VectorIndex:
        """A fresh index over `vectors`; trains on a random subset when the type needs it."""
        index = cls(dim, fingerprint, factory or choose_factory(len(ids), dim))
        vectors = normalise(vectors) if len(vectors) else np.zeros((0, dim), np.float32)
        if not index.index.is_trained and len(vectors):
            rng = np.random.default_rng(0)
            pick = rng.choice(len(vectors), min(train_size, len(vectors)), replace=False)
            index.index.train(vectors[np.sort(pick)])
        index.add(ids, vectors, tags)
        return index

    def _tune(self) -> None:
        inner = faiss.downcast_index(self.index.index)
        refine = inner if isinstance(inner, faiss.IndexRefine) else None
        if refine is not None:
            inner = faiss.downcast_index(inner.base_index)
        if isinstance(inner, faiss.IndexPreTransform):
            inner = faiss.downcast_index(inner.index)
        if refine is not None:
            refine.k_factor = REFINE_K_FACTOR["hnsw" if hasattr(inner, "hnsw") else "ivf"]
        if hasattr(inner, "do_polysemous_training"):
            # On by default from index_factory, and 50x slower to train; we never use it.
            inner.do_polysemous_training = False
        if hasattr(inner, "hnsw"):
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        if hasattr(inner, "nprobe"):
            inner.nprobe = IVF_NPROBE

    @property
    def ntotal(self) -> int:
        """Live vectors (soft-deleted ones excluded)."""
        return self.index.ntotal - len(self.deleted)

    def ids(self) -> np.ndarray:
        """Live ids, as stored in the FAISS id map."""
        stored = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        if not self.deleted:
            return stored
        return stored[~np.isin(stored, np.fromiter(self.deleted, np.int64))]

    def add(self, ids: np.ndarray, vectors: np.ndarray, tags: np.ndarray | None = None) -> None:
        """Add (or, for ids already present, replace) vectors; `tags` default to 0. Replacing
        ids in a type that cannot remove rebuilds the index once for the whole call: batch them."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        tags = np.zeros(len(ids), np.int64) if tags is None else np.asarray(tags, np.int64)
        vectors = normalise(vectors)
        present = np.isin(ids, faiss.vector_to_array(self.index.id_map))
        if present.any() and not self.removable:
            self._compact(ids, vectors, tags)
            return
        self.remove(ids[present])
        self.index.add_with_ids(vectors, ids)
        self.tags.update(zip(ids.tolist(), tags.tolist(), strict=True))

    @property
    def removable(self) -> bool:
        """Whether `remove_ids` works here (Flat, plain IVF) or deletions must be soft."""
        inner = faiss.downcast_index(self.index.index)
        return isinstance(inner, faiss.IndexFlat | faiss.IndexIVF)

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids; soft-deletes (ID selector at search time) where the type cannot remove."""
        ids = np.asarray(ids, dtype=np.int64)
        present = ids[np.isin(ids, faiss.vector_to_array(self.index.id_map))]
        present = present[~np.isin(present, np.fromiter(self.deleted, np.int64,
                                                         len(self.deleted)))]
        if not len(present):
            return 0
        for i in present.tolist():
            self.tags.pop(i, None)
        if self.removable:
            return int(self.index.remove_ids(faiss.IDSelectorBatch(present)))
        self.deleted.update(present.tolist())
        return len(present)

    def _compact(self, extra_ids: np.ndarray | None = None, extra: np.ndarray | None = None,
                 extra_tags: np.ndarray | None = None) -> None:
        """Rebuild without the soft-deleted vectors (read back from the index itself), plus
        `extra` vectors: how a type that cannot remove replaces ids, in one pass."""
        stored = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        keep = ~np.isin(stored, np.fromiter(self.deleted, np.int64, len(self.deleted)))
        if extra_ids is not None:
            keep &= ~np.isin(stored, extra_ids)
        inner = self.index.index
        vectors = inner.reconstruct_n(0, inner.ntotal)[keep] if inner.ntotal else \
            np.zeros((0, self.dim), np.float32)
        ids = stored[keep]
        tags = np.array([self.tags.get(int(i), 0) for i in ids], np.int64)
        if extra_ids is not None:
            ids, vectors = np.concatenate([ids, extra_ids]), np.concatenate([vectors, extra])
            tags = np.concatenate([tags, extra_tags])
        fresh = VectorIndex.build(ids, vectors, self.fingerprint, self.dim, self.factory, tags)
        self.index, self.deleted, self.tags = fresh.index, set(), fresh.tags

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest by cosine, for each query row; missing slots are -1."""
        k = max(1, min(k, max(self.ntotal, 1)))
        if not self.deleted:
            return self._search(normalise(queries), k)
        if isinstance(faiss.downcast_index(self.index.index), faiss.IndexRefine):
            return self._search_filtered(normalise(queries), k)
        sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self.deleted, np.int64)))
        return self._search(normalise(queries), k, faiss.SearchParameters(sel=sel))

    def _search(self, queries: np.ndarray, k: int,
                params: faiss.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS search with scores as cosines: squared L2 between unit vectors is 2 - 2 cos;
        quantised re-ranking (SQ8) can stray past +-1 by ~0.002, so scores are clipped."""
        scores, ids = self.index.search(queries, k, params=params)
        if self.index.metric_type == faiss.METRIC_L2:
            scores = np.where(ids >= 0, 1.0 - scores / 2.0, -np.inf).astype(np.float32)
        return np.where(ids >= 0, np.clip(scores, -1.0, 1.0), scores).astype(np.float32), ids

    def _search_filtered(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Soft delete for re-ranked IVF-PQ (its params cannot carry a selector): over-fetch by
        the number of deleted ids and drop them."""
        scores, ids = self._search(queries, k + len(self.deleted))
        out_s = np.full((len(queries), k), -np.inf, np.float32)
        out_i = np.full((len(queries), k), -1, np.int64)
        dead = np.fromiter(self.deleted, np.int64)
        for row in range(len(queries)):
            keep = ~np.isin(ids[row], dead) & (ids[row] >= 0)
            n = min(k, int(keep.sum()))
            out_s[row, :n], out_i[row, :n] = scores[row][keep][:n], ids[row][keep][:n]
        return out_s, out_i

    def save(self, folder: Path) -> IndexManifest:
        """Write `index-<time>.faiss` then `index.json` (both atomically); drop older files."""
        folder.mkdir(parents=True, exist_ok=True)
        if self.deleted:
            self._compact()
        name = f"index-{time.time_ns()}.faiss"
        with atomic_target(folder / name) as tmp:
            faiss.write_index(self.index, str(tmp))
        tags = name.replace(".faiss", ".tags.npy")
        buf = io.BytesIO()
        np.save(buf, np.array(sorted(self.tags.items()), np.int64).reshape(-1, 2))
        atomic_write_bytes(folder / tags, buf.getvalue())
        manifest = IndexManifest(self.fingerprint, self.dim, int(self.index.ntotal), self.factory,
                                 name, tags, time.time())
        atomic_write_bytes(folder / MANIFEST, json.dumps(manifest.__dict__, indent=2).encode())
        for old in folder.glob("index-*"):
            if old.name not in (name, tags):
                old.unlink(missing_ok=True)
        return manifest

    @classmethod
    def load(cls, folder: Path, fingerprint: str, mmap: bool = False) -> VectorIndex | None:
        """The saved index, or None when there is none; ModelMismatchError for another model.
        `mmap`: map the file instead of reading it (read-only: index/mapped.py wraps it)."""
        manifest = read_index_manifest(folder)
        if manifest is None:
            return None
        if manifest.fingerprint != fingerprint:
            raise ModelMismatchError(
                f"the index in {folder} was built by model {manifest.fingerprint}, not "
                f"{fingerprint}; re-run `cvsm index` with this model to rebuild it")
        # Maps every flat code array (exact vectors, HNSW storage, PQ/SQ8 codes, re-ranking
        # vectors); IVF lists stay in RAM (IO_FLAG_MMAP's on-disk lists cannot be combined).
        flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
        raw = faiss.read_index(str(folder / manifest.file), flags)
        if raw.d != manifest.dim or raw.ntotal != manifest.count:
            raise ValueError(f"{folder / manifest.file} does not match its manifest")
        out = cls.__new__(cls)
        out.dim, out.fingerprint, out.factory = manifest.dim, fingerprint, manifest.factory
        out.index, out.deleted = faiss.downcast_index(raw), set()
        out._owner = raw  # the downcast view does not own the C++ object: keep it alive
        pairs = np.load(folder / manifest.tags)
        out.tags = dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True))
        if not isinstance(out.index, faiss.IndexIDMap2):
            raise ValueError(f"{folder / manifest.file} is not an IndexIDMap2")
        out._tune()
        return out


def read_index_manifest(folder: Path) -> IndexManifest | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    return IndexManifest(**json.loads(path.read_text()))
