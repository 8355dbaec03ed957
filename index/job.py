"""The batch indexing job behind `cvsm index`: catalog -> decode (worker processes) -> embed in
batches -> SQL rows with vectors (one transaction per batch) -> FAISS.

Incremental: a track whose content hash and model fingerprint match its row is not decoded again;
a new model re-embeds everything. Failures are rows with status "failed" and a reason. Crash
safety comes from the order of writes: a batch's rows and vectors commit together, and the FAISS
file is only a cache reconciled from committed rows (index/store.py), so after `kill -9` a re-run
skips what was committed, embeds the rest and leaves SQL and FAISS in exact agreement. A sharded
run (`shard=(K, N)`) writes rows only; `index.merge` builds the one index afterwards.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from tqdm import tqdm

from index import changes, db
from index.repository import TrackWrite, unit_vector, write_tracks
from index.schema import IndexRun, Track
from index.sources import (
    READY,
    UNCHANGED,
    CatalogItem,
    Prepared,
    in_shard,
    prepare,
    read_catalog,
)
from index.store import build_index, content_tag, sync_index
from index.uploads import UploadStore
from index.vector_store import INDEX_DIR
from index.vectors import ModelMismatchError, VectorIndex, choose_factory
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder

__all__ = ["INDEX_DIR", "JobConfig", "Summary", "ordered_map", "run_index"]


@dataclass(frozen=True)
class JobConfig:
    catalog: Path
    data_dir: Path
    db_url: str | None = None
    shard: tuple[int, int] = (0, 1)
    workers: int = 1
    batch: int = 16
    index_factory: str | None = None
    #: Save the FAISS file at least this often during a long run (it is only a cache).
    save_every_s: float = 600.0
    progress: bool = True


@dataclass
class Summary:
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    seconds: float = 0.0
    audio_seconds: float = 0.0
    vectors: int | None = None

    @property
    def tracks_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds else 0.0

    @property
    def realtime(self) -> float:
        """Seconds of audio embedded per second of wall time."""
        return self.audio_seconds / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        vectors = "" if self.vectors is None else f", {self.vectors} vectors in the index"
        return (f"indexed {self.indexed}, unchanged {self.unchanged}, failed {self.failed} in "
                f"{self.seconds:.1f} s ({self.tracks_per_s:.2f} tracks/s, "
                f"{self.realtime:.1f}x real time){vectors}")


def open_job(cfg: JobConfig) -> tuple[Engine, sessionmaker, list[CatalogItem]]:
    """The migrated database of a job (engine, sessions) and the catalog items of its shard:
    what every engine (local, Ray) starts from."""
    url = cfg.db_url or db.sqlite_url(cfg.data_dir)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    db.migrate(url)
    engine = db.make_engine(url)
    items = [i for i in read_catalog(cfg.catalog) if in_shard(i.track_id, *cfg.shard)]
    return engine, db.session_factory(engine), items


def run_index(cfg: JobConfig, embedder: TrackEmbedder) -> Summary:
    """Index `cfg.catalog` with `embedder`; returns the end summary."""
    start = time.perf_counter()
    engine, sessions, items = open_job(cfg)
    sharded = cfg.shard[1] > 1
    index = None if sharded else _open_index(sessions, cfg, embedder)
    with sessions() as session:
        known = _known_hashes(session, embedder.fingerprint)
    run_id = _start_run(sessions, cfg, embedder.fingerprint)
    summary = Summary()
    writer = _BatchWriter(sessions, embedder, index, run_id, summary, UploadStore(cfg.data_dir))
    last_save = time.monotonic()
    tasks = ((item, known.get(item.track_id)) for item in items)
    bar = tqdm(total=len(items), desc="index", unit="track", disable=not cfg.progress)
    for prepared in ordered_map(prepare, tasks, cfg.workers):
        writer.take(prepared)
        if len(writer.pending) >= cfg.batch:
            writer.flush()
        bar.update()
        bar.set_postfix(new=summary.indexed, same=summary.unchanged, failed=summary.failed)
        if index is not None and time.monotonic() - last_save > cfg.save_every_s:
            index.save(cfg.data_dir / INDEX_DIR)
            last_save = time.monotonic()
    writer.finish()
    bar.close()
    if index is not None:
        index = _finish_index(sessions, cfg, embedder, index)
        summary.vectors = index.ntotal
    summary.seconds = time.perf_counter() - start
    _finish_run(sessions, run_id, summary)
    engine.dispose()
    return summary


def _open_index(sessions: sessionmaker, cfg: JobConfig, embedder: TrackEmbedder) -> VectorIndex:
    """The saved index reconciled with SQL; another model's index is replaced, not refused:
    this job is what re-embeds the catalog for the new model."""
    folder = cfg.data_dir / INDEX_DIR
    try:
        index, _ = sync_index(sessions, folder, embedder.fingerprint, embedder.dim,
                              cfg.index_factory)
    except ModelMismatchError:
        index = build_index(sessions, embedder.fingerprint, embedder.dim, cfg.index_factory)
    return index


def _finish_index(sessions: sessionmaker, cfg: JobConfig, embedder: TrackEmbedder,
                  index: VectorIndex) -> VectorIndex:
    """Rebuild when the catalog outgrew (or shrank below) the index type, then save."""
    wanted = cfg.index_factory or choose_factory(index.ntotal, embedder.dim)
    if wanted != index.factory:
        index = build_index(sessions, embedder.fingerprint, embedder.dim, wanted)
    index.save(cfg.data_dir / INDEX_DIR)
    return index


def _known_hashes(session: Session, fingerprint: str) -> dict[str, str]:
    """external_id -> content hash of rows already done (indexed or failed) with this model."""
    rows = session.execute(select(Track.external_id, Track.content_hash)
                           .where(Track.model_fingerprint == fingerprint))
    return dict(rows.all())


def _start_run(sessions: sessionmaker, cfg: JobConfig, fingerprint: str) -> int:
    with sessions.begin() as session:
        run = IndexRun(kind="index", catalog=str(cfg.catalog), model_fingerprint=fingerprint,
                       shard=f"{cfg.shard[0]}/{cfg.shard[1]}" if cfg.shard[1] > 1 else "")
        session.add(run)
        session.flush()
        return run.id


def _finish_run(sessions: sessionmaker, run_id: int, summary: Summary) -> None:
    """Record the run as done, and drop day-old change-feed rows (replicas prune them too, but
    a catalog indexed with no service running would otherwise keep one row per write)."""
    with sessions.begin() as session:
        run = session.get(IndexRun, run_id)
        run.status, run.finished_at, run.seconds = "done", datetime.now(UTC), summary.seconds
        run.indexed, run.unchanged, run.failed = summary.indexed, summary.unchanged, summary.failed
    changes.prune(sessions)


class _BatchWriter:
    """Collects prepared items; `flush` embeds the ready ones together and commits one batch."""

    def __init__(self, sessions: sessionmaker, embedder: TrackEmbedder, index: VectorIndex | None,
                 run_id: int, summary: Summary, files: UploadStore) -> None:
        self.sessions, self.embedder, self.index = sessions, embedder, index
        self.run_id, self.summary = run_id, summary
        self.files = files  # records sources inside the data dir relative to it
        self.pending: list[Prepared] = []
        #: Replacements for an index type that cannot remove: applied in one rebuild at the end.
        self.deferred: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def take(self, prepared: Prepared) -> None:
        if prepared.status == UNCHANGED:
            self.summary.unchanged += 1
        else:
            self.pending.append(prepared)

    def flush(self) -> None:
        """Embed the ready items together, commit every pending row in one transaction, then
        update FAISS (SQL first: a crash in between is repaired from SQL on the next open)."""
        if not self.pending:
            return
        ready = [p for p in self.pending if p.status == READY]
        vectors = self.embedder.embed_many([p.samples for p in ready]) if ready else []
        by_id = {p.item.track_id: unit_vector(v, self.embedder.dim)
                 for p, v in zip(ready, vectors, strict=True)}
        writes = [self._write(p, by_id.get(p.item.track_id)) for p in self.pending]
        with self.sessions.begin() as session:
            write_tracks(session, writes)
        if self.index is not None:
            self.index.remove(np.array([w.vector_id for w in writes if w.vector is None],
                                       np.int64))
            if ready:
                self._add(np.array([w.vector_id for w in writes if w.vector is not None],
                                   np.int64),
                          np.stack([w.vector for w in writes if w.vector is not None]),
                          np.array([content_tag(p.content_hash) for p in ready], np.int64))
        self.summary.indexed += len(ready)
        self.summary.failed += len(self.pending) - len(ready)
        self.summary.audio_seconds += sum(len(p.samples) for p in ready) / SAMPLE_RATE
        self.pending = []

    def _write(self, p: Prepared, vector: np.ndarray | None) -> TrackWrite:
        """The row of one prepared item: container tags (folder catalogs) override the
        catalog's title and artist, and the other tags join its metadata."""
        item = p.item
        extra = {k: v for k, v in p.tags.items() if k not in ("title", "artist")}
        return TrackWrite(external_id=item.track_id, model_fingerprint=self.embedder.fingerprint,
                          content_hash=p.content_hash,
                          source=self.files.source_of(Path(item.source)),
                          title=p.tags.get("title") or item.title,
                          artist=p.tags.get("artist") or item.artist,
                          metadata={**item.metadata, **extra}, vector=vector,
                          duration=None if vector is None else len(p.samples) / SAMPLE_RATE,
                          error=p.error if vector is None else None, run_id=self.run_id)

    def _add(self, ids: np.ndarray, vectors: np.ndarray, tags: np.ndarray) -> None:
        old = np.isin(ids, np.fromiter(self.index.tags, np.int64, len(self.index.tags)))
        if self.index.removable or not old.any():
            self.index.add(ids, vectors, tags)
            return
        self.index.add(ids[~old], vectors[~old], tags[~old])
        self.deferred.append((ids[old], vectors[old], tags[old]))

    def finish(self) -> None:
        """Flush, then apply the deferred replacements (one rebuild for the whole run)."""
        self.flush()
        if self.deferred:
            ids, vectors, tags = (np.concatenate(p) for p in zip(*self.deferred, strict=True))
            self.index.add(ids, vectors, tags)
            self.deferred = []


def ordered_map(fn: Callable[..., Prepared], tasks: Iterable[tuple],
                workers: int) -> Iterator[Prepared]:
    """fn(*task) for each task, in order; in `workers` spawned processes when > 1, with at most
    4 x workers tasks in flight so decoded audio never piles up ahead of the embedder."""
    if workers <= 1:
        for task in tasks:
            yield fn(*task)
        return
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        window: deque = deque()
        for task in tasks:
            window.append(pool.submit(fn, *task))
            if len(window) >= 4 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
