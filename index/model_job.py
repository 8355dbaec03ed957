"""`cvsm index --extra-model`: embed a catalog's tracks with another model than its own, so the
service can search the same rows with several models side by side (issue 16, blind comparison).

The rows stay the catalog's own model's (index/job.py writes them); this job only adds the other
model's vectors to `track_vectors` and builds that model's FAISS index in
`index-models/<fingerprint>/`. It reads the same manifest or folder the catalog was indexed from
(a row of summed stems cannot be re-read from its stored path alone). Like the main job it is
incremental and resumable: each batch commits its vectors, a track whose vector of this model was
computed from its current audio is skipped, and the index is reconciled from SQL at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from tqdm import tqdm

from index.job import JobConfig, Summary, open_job, ordered_map
from index.repository import unit_vector, write_model_vectors
from index.schema import INDEXED, Track, TrackVector
from index.sources import READY, UNCHANGED, Prepared, prepare
from index.store import build_index, sync_index
from index.vector_store import index_folder
from index.vectors import choose_factory
from model.audio.signal import SAMPLE_RATE
from model.facts import TrackEmbedder

__all__ = ["ModelSummary", "OwnModelError", "run_model_index"]


class OwnModelError(ValueError):
    """The model given is the catalog's own: its vectors are the rows' (plain `cvsm index`)."""


class _Row(NamedTuple):
    pk: int
    content_hash: str


@dataclass
class ModelSummary(Summary):
    #: Catalog entries with no indexed row (index them with the catalog's model first) or whose
    #: audio changed since (re-run `cvsm index`): no vector of this model is written for them.
    skipped: int = 0

    def line(self) -> str:
        return super().line() + f"; skipped {self.skipped} not indexed with the catalog's model"


def run_model_index(cfg: JobConfig, embedder: TrackEmbedder) -> ModelSummary:
    """Embed `cfg.catalog`'s indexed tracks with `embedder` into its side index."""
    start = time.perf_counter()
    engine, sessions, listed = open_job(cfg)
    try:
        rows, known = _catalog_rows(sessions, embedder.fingerprint)
        summary = ModelSummary()
        items = [i for i in listed if i.track_id in rows]
        summary.skipped = len(listed) - len(items)
        bar = tqdm(total=len(items), desc=f"index {embedder.fingerprint}", unit="track",
                   disable=not cfg.progress)
        pending: list[Prepared] = []
        tasks = ((item, known.get(item.track_id)) for item in items)
        for prepared in ordered_map(prepare, tasks, cfg.workers):
            _take(prepared, rows, pending, summary)
            if len(pending) >= cfg.batch:
                _flush(sessions, embedder, rows, pending, summary)
            bar.update()
            bar.set_postfix(new=summary.indexed, same=summary.unchanged, failed=summary.failed)
        _flush(sessions, embedder, rows, pending, summary)
        bar.close()
        summary.vectors = _save_index(sessions, cfg, embedder)
    finally:
        engine.dispose()
    summary.seconds = time.perf_counter() - start
    return summary


def _catalog_rows(sessions: sessionmaker, fingerprint: str
                  ) -> tuple[dict[str, _Row], dict[str, str]]:
    """The indexed rows by external id, and the content hashes this model's vectors of them
    were computed from. OwnModelError when the rows themselves are this model's."""
    with sessions() as session:
        if session.scalar(select(Track.id).where(Track.model_fingerprint == fingerprint)
                          .limit(1)) is not None:
            raise OwnModelError(f"model {fingerprint} is the catalog's own model; index with "
                                "it without --extra-model")
        rows = {ext: _Row(pk, h) for ext, pk, h in session.execute(
            select(Track.external_id, Track.id, Track.content_hash)
            .where(Track.status == INDEXED))}
        known = dict(session.execute(
            select(Track.external_id, TrackVector.content_hash)
            .join(TrackVector, TrackVector.track_id == Track.id)
            .where(TrackVector.model_fingerprint == fingerprint)).all())
    return rows, known


def _take(p: Prepared, rows: dict[str, _Row], pending: list[Prepared],
          summary: ModelSummary) -> None:
    if p.status == UNCHANGED:
        summary.unchanged += 1
    elif p.status != READY:
        summary.failed += 1
    elif p.content_hash != rows[p.item.track_id].content_hash:
        summary.skipped += 1  # the file changed since the catalog's model indexed it
    else:
        pending.append(p)


def _flush(sessions: sessionmaker, embedder: TrackEmbedder, rows: dict[str, _Row],
           pending: list[Prepared], summary: ModelSummary) -> None:
    """Embed the pending tracks together and commit their vectors in one transaction."""
    if not pending:
        return
    vectors = embedder.embed_many([p.samples for p in pending])
    with sessions.begin() as session:
        write_model_vectors(session, embedder.fingerprint, {
            rows[p.item.track_id].pk: (p.content_hash, unit_vector(v, embedder.dim))
            for p, v in zip(pending, vectors, strict=True)})
    summary.indexed += len(pending)
    summary.audio_seconds += sum(len(p.samples) for p in pending) / SAMPLE_RATE
    pending.clear()


def _save_index(sessions: sessionmaker, cfg: JobConfig, embedder: TrackEmbedder) -> int:
    """Bring the model's saved index in line with SQL (the type chosen by size), save it."""
    folder = index_folder(cfg.data_dir, embedder.fingerprint)
    index, _ = sync_index(sessions, folder, embedder.fingerprint, embedder.dim,
                          cfg.index_factory)
    wanted = cfg.index_factory or choose_factory(index.ntotal, embedder.dim)
    if wanted != index.factory:
        index = build_index(sessions, embedder.fingerprint, embedder.dim, wanted)
    index.save(folder)
    return index.ntotal
