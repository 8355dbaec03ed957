"""SQL schema (SQLAlchemy 2 typed ORM): catalog tracks, other models' vectors, indexing runs and
listening studies.

SQL is the source of truth: each indexed track keeps its float32 vector in `tracks.vector`, so
the FAISS file is a cache that can always be rebuilt or reconciled from committed rows (a job
killed at any moment never leaves the two disagreeing for longer than the next open).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Track statuses. Only `indexed` rows have a vector and appear in the FAISS index.
INDEXED, FAILED = "indexed", "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Metadata shared with Alembic (migrations/env.py)."""


class Track(Base):
    __tablename__ = "tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(512), default="")
    artist: Mapped[str] = mapped_column(String(512), default="", index=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(Text, default="")
    duration: Mapped[float | None] = mapped_column(Float, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default=INDEXED, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: FAISS id: a stable 63-bit hash of external_id, so shards merge without renumbering.
    vector_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    model_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("index_runs.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)


class TrackVector(Base):
    """A track's vector from another model than the one in `tracks.vector` (issue 16: several
    models side by side over one catalog). The row says which content it was computed from, so a
    track whose audio changed is left out of that model's index until it is re-embedded."""

    __tablename__ = "track_vectors"
    __table_args__ = (UniqueConstraint("track_id", "model_fingerprint",
                                       name="uq_track_vector_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"),
                                          index=True)
    model_fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrackChange(Base):
    """One committed change to a track's row or vectors, in commit-ish order (`seq`): what API
    replicas follow to keep their in-memory indexes in step with the shared database
    (index/changes.py). Written by an ORM hook, so every writer records its changes."""

    __tablename__ = "track_changes"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    #: The track's FAISS id; null when only the track's primary key was at hand (`track_id`).
    vector_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 index=True)


class IndexRun(Base):
    """One `cvsm index` / `cvsm merge` invocation: what it read, with which model, how it ended."""

    __tablename__ = "index_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), default="index")
    catalog: Mapped[str] = mapped_column(Text, default="")
    shard: Mapped[str] = mapped_column(String(32), default="")
    model_fingerprint: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    indexed: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Study(Base):
    """A blind listening study (issue 16): which models are compared, on which queries."""

    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudyTrial(Base):
    """One judgement to make: a query and two candidates, one from each of two models."""

    __tablename__ = "study_trials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), index=True)
    #: "track" (a catalog track's external id) or "upload" (a stored clip's path).
    query_kind: Mapped[str] = mapped_column(String(16), default="track")
    query_ref: Mapped[str] = mapped_column(Text, default="")
    model_a: Mapped[str] = mapped_column(String(128))
    model_b: Mapped[str] = mapped_column(String(128))
    candidate_a: Mapped[str] = mapped_column(String(255))
    candidate_b: Mapped[str] = mapped_column(String(255))


class StudyVote(Base):
    """A participant's answer to a trial; the unique pair makes a second answer impossible."""

    __tablename__ = "study_votes"
    __table_args__ = (UniqueConstraint("trial_id", "participant", name="uq_study_vote_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("study_trials.id"), index=True)
    participant: Mapped[str] = mapped_column(String(64), index=True)
    #: "a", "b" or "tie" (index/study_results.py).
    outcome: Mapped[str] = mapped_column(String(8))
    #: Which model's candidate the page showed on the left ("a" or "b"): sides are randomised.
    left: Mapped[str] = mapped_column(String(1), default="a")
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
