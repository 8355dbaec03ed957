"""`cvsm merge`: combine the rows of sharded runs and build the one FAISS index.

Shards either share one database (e.g. PostgreSQL: merging then only builds the index) or each
wrote its own (`sources`: their rows are copied into the target, matched by external id; vector
ids are hashes of the external id, so they need no renumbering). The result equals a single run
over the whole catalog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from index import db
from index.repository import upsert_rows
from index.schema import INDEXED, IndexRun, Track
from index.store import build_index
from index.vector_store import INDEX_DIR
from model.facts import EMBED_DIM

COPIED = ("title", "artist", "extra", "source", "duration", "content_hash", "status", "error",
          "vector", "model_fingerprint", "created_at", "updated_at")
BATCH = 1000


@dataclass
class MergeSummary:
    copied: int
    vectors: int
    fingerprint: str
    index_type: str
    seconds: float

    def line(self) -> str:
        return (f"merged: copied {self.copied} rows, {self.vectors} vectors of model "
                f"{self.fingerprint} in a {self.index_type} index, {self.seconds:.1f} s")


def merge(target_url: str, data_dir: Path, sources: list[str] = (),
          fingerprint: str | None = None, index_factory: str | None = None) -> MergeSummary:
    """Copy `sources`' rows into `target_url`, then build and save the index of `fingerprint`
    (default: the only model found among the indexed rows)."""
    start = time.perf_counter()
    db.migrate(target_url)
    engine = db.make_engine(target_url)
    sessions = db.session_factory(engine)
    copied = sum(copy_rows(url, sessions) for url in sources)
    fingerprint = fingerprint or _only_fingerprint(sessions)
    dim = _dim(sessions, fingerprint)
    index = build_index(sessions, fingerprint, dim, index_factory)
    index.save(Path(data_dir) / INDEX_DIR)
    summary = MergeSummary(copied, index.ntotal, fingerprint, index.factory,
                           time.perf_counter() - start)
    with sessions.begin() as session:
        session.add(IndexRun(kind="merge", catalog=" ".join(sources), status="done",
                             model_fingerprint=fingerprint, indexed=index.ntotal,
                             seconds=summary.seconds, finished_at=datetime.now(UTC)))
    engine.dispose()
    return summary


def copy_rows(source_url: str, target: sessionmaker) -> int:
    """Upsert every row of the database at `source_url` into `target`, batch by batch."""
    engine = db.make_engine(source_url)
    copied = 0
    with db.session_factory(engine)() as src:
        batch: list[Track] = []
        for row in src.scalars(select(Track).order_by(Track.id).execution_options(
                yield_per=BATCH)):
            batch.append(row)
            if len(batch) >= BATCH:
                copied += _write(target, batch)
                batch = []
        copied += _write(target, batch)
    engine.dispose()
    return copied


def _write(target: sessionmaker, rows: list[Track]) -> int:
    if not rows:
        return 0
    with target.begin() as session:
        mine = upsert_rows(session, (r.external_id for r in rows))
        for row in rows:
            for name in COPIED:
                setattr(mine[row.external_id], name, getattr(row, name))
    return len(rows)


def _only_fingerprint(sessions: sessionmaker) -> str:
    with sessions() as session:
        found = session.scalars(select(Track.model_fingerprint).where(
            Track.status == INDEXED).distinct()).all()
    if len(found) != 1:
        raise ValueError(f"indexed rows come from {len(found)} models ({', '.join(map(str, found))}"
                         "); name the model with --checkpoint")
    return found[0]


def _dim(sessions: sessionmaker, fingerprint: str) -> int:
    with sessions() as session:
        raw = session.scalar(select(Track.vector).where(
            (Track.model_fingerprint == fingerprint) & Track.vector.is_not(None)).limit(1))
    return len(raw) // 4 if raw else EMBED_DIM
