"""The change feed that keeps several API replicas' in-memory FAISS indexes in step with one
shared database (issue 15): every committed change to a track row or to another model's vector
of it adds a `track_changes` row, and each replica polls for rows past its cursor.

Why an ORM hook: rows are written by the service, the batch jobs and `cvsm merge`; recording
changes in `before_flush` covers them all in the writer's own transaction, so a change row
exists exactly when the change committed. Why gaps are re-read: on PostgreSQL a transaction
may take its sequence number before another and commit after it, so a poll can see seq 12
before seq 11 exists; the missing numbers are re-read for `GAP_WAIT_S` (a rolled-back
transaction leaves a gap for ever). The replica's periodic full reconcile stays the safety net.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from index.schema import Track, TrackChange, TrackVector

#: How long a missing sequence number is looked for again before it is given up.
GAP_WAIT_S = 10.0
MAX_GAPS = 10_000


@event.listens_for(Session, "before_flush")
def _record_changes(session: Session, _context, _instances) -> None:
    """Add a change row for every track row or side vector this flush inserts, modifies or
    deletes (in the same transaction)."""
    changes: set[tuple[int | None, int | None]] = set()
    for obj in (*session.new, *session.deleted,
                *(o for o in session.dirty if session.is_modified(o))):
        if isinstance(obj, Track):
            changes.add((obj.vector_id, None))
        elif isinstance(obj, TrackVector):
            changes.add((None, obj.track_id))
    session.add_all(TrackChange(vector_id=v, track_id=t) for v, t in changes)


class ChangeFeed:
    """A replica's cursor over `track_changes`: `poll()` returns the FAISS ids changed since."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions
        self.cursor = 0
        self.gaps: dict[int, float] = {}  # missing seq -> when it was first missed

    def start(self) -> None:
        """Begin after everything committed so far (call before the full reconcile, so a
        change committed during it is seen by both rather than by neither)."""
        with self.sessions() as session:
            self.cursor = int(session.scalar(select(func.max(TrackChange.seq))) or 0)
        self.gaps.clear()

    def poll(self) -> set[int]:
        """FAISS ids of tracks changed since the last poll (and in gaps that filled)."""
        low = min(self.gaps, default=self.cursor + 1)
        with self.sessions() as session:
            rows = session.execute(select(TrackChange.seq, TrackChange.vector_id,
                                          TrackChange.track_id)
                                   .where(TrackChange.seq >= low)
                                   .order_by(TrackChange.seq)).all()
            rows = [r for r in rows if r.seq > self.cursor or r.seq in self.gaps]  # new only
            seen = {r.seq for r in rows}
            ids = {r.vector_id for r in rows if r.vector_id is not None}
            pks = {r.track_id for r in rows if r.track_id is not None}
            if pks:
                ids |= set(session.scalars(select(Track.vector_id).where(Track.id.in_(pks))))
        self._advance(seen)
        return ids

    def _advance(self, seen: set[int]) -> None:
        now = time.monotonic()
        for seq in seen:
            self.gaps.pop(seq, None)
        top = max(seen, default=self.cursor)
        if top > self.cursor and top - self.cursor <= MAX_GAPS:
            self.gaps.update((s, now) for s in range(self.cursor + 1, top) if s not in seen)
        self.cursor = max(self.cursor, top)
        self.gaps = {s: t for s, t in self.gaps.items() if now - t < GAP_WAIT_S}


def prune(sessions: sessionmaker, older_than_s: float = 86_400.0) -> int:
    """Delete change rows older than this (replicas that start later reconcile in full)."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
    with sessions.begin() as session:
        return session.execute(delete(TrackChange).where(TrackChange.created_at < cutoff)
                               ).rowcount or 0
