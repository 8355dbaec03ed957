"""listening studies: studies, trials and votes (issue 16)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_studies_name", "studies", ["name"], unique=True)
    op.create_table(
        "study_trials",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("study_id", sa.Integer(), sa.ForeignKey("studies.id"), nullable=False),
        sa.Column("query_kind", sa.String(16), nullable=False),
        sa.Column("query_ref", sa.Text(), nullable=False),
        sa.Column("model_a", sa.String(128), nullable=False),
        sa.Column("model_b", sa.String(128), nullable=False),
        sa.Column("candidate_a", sa.String(255), nullable=False),
        sa.Column("candidate_b", sa.String(255), nullable=False),
    )
    op.create_index("ix_study_trials_study_id", "study_trials", ["study_id"])
    op.create_table(
        "study_votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("trial_id", sa.Integer(), sa.ForeignKey("study_trials.id"), nullable=False),
        sa.Column("participant", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("left", sa.String(1), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("trial_id", "participant", name="uq_study_vote_once"),
    )
    op.create_index("ix_study_votes_trial_id", "study_votes", ["trial_id"])
    op.create_index("ix_study_votes_participant", "study_votes", ["participant"])


def downgrade() -> None:
    op.drop_table("study_votes")
    op.drop_table("study_trials")
    op.drop_table("studies")
