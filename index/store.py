"""Keeping the FAISS index in agreement with the committed SQL rows (the source of truth).

An indexed row holds its vector (float32 bytes) and content hash; the FAISS index holds the same
vector under the row's `vector_id`, tagged with that hash. A model other than the row's own keeps
its vector of the track in `track_vectors` (several models side by side over one catalog): the
functions here take a model fingerprint and read whichever of the two holds that model's vector,
so the same code builds, loads and reconciles every model's index. `sync_index` loads the saved
index (or builds one) and then adds every row whose tag it lacks or has stale and removes every
id SQL no longer has, so after any crash the next open serves exactly the committed rows.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from index.mapped import MappedIndex
from index.schema import INDEXED, Track, TrackVector
from index.vectors import ModelMismatchError, VectorIndex, choose_factory, normalise

CHUNK = 5_000
log = logging.getLogger("cvsm.index")


def encode_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def decode_vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype="<f4").copy()


def content_tag(content_hash: str) -> int:
    """60-bit integer of a hex content hash: the FAISS sidecar's staleness tag."""
    return int(content_hash[:15] or "0", 16)


def live_rows(fingerprint: str) -> ColumnElement[bool]:
    """The condition for rows that belong in the index of model `fingerprint`."""
    return (Track.status == INDEXED) & (Track.model_fingerprint == fingerprint) & \
        Track.vector.is_not(None)


def side_rows(fingerprint: str) -> ColumnElement[bool]:
    """The condition for `track_vectors` rows (joined to their track) that belong in the index
    of model `fingerprint`: computed from the track's current audio, and not shadowed by the
    track's own vector of the same model."""
    return (TrackVector.model_fingerprint == fingerprint) & (Track.status == INDEXED) & \
        (TrackVector.content_hash == Track.content_hash) & \
        ((Track.model_fingerprint != fingerprint) | Track.model_fingerprint.is_(None))


def sql_tags(session: Session, fingerprint: str,
             only: Collection[int] | None = None) -> dict[int, int]:
    """vector_id -> content tag of every live row of the model (streamed; no vectors loaded),
    or of those among the ids `only`."""
    own_rows, side = live_rows(fingerprint), side_rows(fingerprint)
    if only is not None:
        own_rows, side = own_rows & Track.vector_id.in_(list(only)), \
            side & Track.vector_id.in_(list(only))
    own = session.execute(select(Track.vector_id, Track.content_hash)
                          .where(own_rows).execution_options(yield_per=CHUNK))
    tags = {vid: content_tag(h) for vid, h in own}
    others = session.execute(select(Track.vector_id, TrackVector.content_hash)
                             .join(TrackVector, TrackVector.track_id == Track.id)
                             .where(side).execution_options(yield_per=CHUNK))
    tags.update((vid, content_tag(h)) for vid, h in others)
    return tags


def load_vectors(session: Session, vector_ids: Iterable[int], dim: int, fingerprint: str
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids, vectors, tags) batches of model `fingerprint` for the given vector ids: from the
    rows themselves, or from `track_vectors` for tracks whose own vector is another model's."""
    wanted = list(vector_ids)
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        rows = session.execute(select(Track.vector_id, Track.vector, Track.content_hash)
                               .where(Track.vector_id.in_(chunk) & live_rows(fingerprint))).all()
        rows += session.execute(select(Track.vector_id, TrackVector.vector,
                                       TrackVector.content_hash)
                                .join(TrackVector, TrackVector.track_id == Track.id)
                                .where(Track.vector_id.in_(chunk) & side_rows(fingerprint))).all()
        if rows:
            yield (np.array([r[0] for r in rows], np.int64),
                   np.stack([decode_vector(r[1]) for r in rows]).reshape(-1, dim),
                   np.array([content_tag(r[2]) for r in rows], np.int64))


def build_index(sessions: sessionmaker, fingerprint: str, dim: int,
                factory: str | None = None, train_size: int = 200_000) -> VectorIndex:
    """A fresh index over all live rows (type chosen by size unless `factory` is given),
    streamed from SQL in chunks; types that need training first see a random sample."""
    with sessions() as session:
        tags = sql_tags(session, fingerprint)
        index = VectorIndex(dim, fingerprint, factory or choose_factory(len(tags), dim))
        if not index.index.is_trained and tags:
            pick = np.random.default_rng(0).permutation(np.fromiter(tags, np.int64, len(tags)))
            sample = [v for _, v, _ in load_vectors(session, pick[:train_size].tolist(), dim,
                                                     fingerprint)]
            index.index.train(normalise(np.concatenate(sample)))
        for ids, vecs, tg in load_vectors(session, tags, dim, fingerprint):
            index.add(ids, vecs, tg)
    return index


def reconcile(index: VectorIndex, sessions: sessionmaker,
              want: dict[int, int] | None = None, only: Collection[int] | None = None) -> int:
    """Make `index` hold exactly the live rows (`want`: their tags, read here when not given),
    or, with `only`, do so for those ids alone (a replica following the change feed);
    returns how many ids were added or removed."""
    with sessions() as session:
        if want is None:
            want = sql_tags(session, index.fingerprint, only)
        have = index.tags
        stale = [vid for vid, tag in want.items() if have.get(vid) != tag]
        candidates = have if only is None else [vid for vid in only if vid in have]
        gone = np.array([vid for vid in candidates if vid not in want], np.int64)
        index.remove(gone)
        for ids, vecs, tags in load_vectors(session, stale, index.dim, index.fingerprint):
            index.add(ids, vecs, tags)
    return len(stale) + len(gone)


def sync_index(sessions: sessionmaker, folder: Path, fingerprint: str, dim: int,
               factory: str | None = None, mmap: bool = False
               ) -> tuple[VectorIndex | MappedIndex, int]:
    """The saved index reconciled with SQL (or built from SQL when none is saved), and the
    number of changes made. Raises ModelMismatchError if the saved one is another model's; a
    damaged saved index (truncated, corrupt manifest or sidecar) is ignored and rebuilt.
    `mmap`: map the saved file (index/mapped.py); one built here is saved, then mapped."""
    try:
        index = VectorIndex.load(folder, fingerprint, mmap=mmap)
    except ModelMismatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged file (any reader error): SQL rebuilds it
        log.warning("the saved index in %s is unreadable (%s); rebuilding it from SQL",
                    folder.name, type(exc).__name__)
        index = None
    if index is None or (factory is not None and index.factory != factory):
        index = build_index(sessions, fingerprint, dim, factory)
        if not mmap:
            return index, index.ntotal
        index.save(folder)
        return MappedIndex(VectorIndex.load(folder, fingerprint, mmap=True)), index.ntotal
    if mmap:
        index = MappedIndex(index)
    return index, reconcile(index, sessions)
