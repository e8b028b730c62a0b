"""PIM: rule files users add (channel dialects and compliance packs), stored so they apply in every process

Revision ID: 0008_pim_rules
Revises: 0002_pim
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_pim_rules"
down_revision = "0002_pim"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pim_rulesets",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name", name=op.f("pk_pim_rulesets")),
    )


def downgrade() -> None:
    op.drop_table("pim_rulesets")
