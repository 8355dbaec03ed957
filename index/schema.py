"""SQL schema (SQLAlchemy 2 typed ORM): catalog tracks and indexing runs.

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
