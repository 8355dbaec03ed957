"""several models over one catalog: track_vectors (issue 16)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "track_vectors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("track_id", sa.Integer(), sa.ForeignKey("tracks.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("model_fingerprint", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("track_id", "model_fingerprint", name="uq_track_vector_model"),
    )
    op.create_index("ix_track_vectors_track_id", "track_vectors", ["track_id"])
    op.create_index("ix_track_vectors_model_fingerprint", "track_vectors",
                    ["model_fingerprint"])


def downgrade() -> None:
    op.drop_table("track_vectors")
