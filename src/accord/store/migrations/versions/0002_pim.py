"""PIM: definitions, products and variant trees, values, assets, history, channel context, readiness

Revision ID: 0002_pim
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_pim"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pim_assets",
        sa.Column("uri", sa.String(length=1000), nullable=False),
        sa.Column("mime_type", sa.String(length=128), nullable=False),
        sa.Column("width_px", sa.Integer(), nullable=True),
        sa.Column("height_px", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("uri", name=op.f("pk_pim_assets")),
    )
    op.create_table(
        "pim_attributes",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pim_attributes")),
    )
    op.create_table(
        "pim_categories",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pim_categories")),
    )
    op.create_table(
        "pim_families",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pim_families")),
    )
    op.create_table(
        "pim_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("attribute", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pim_history")),
    )
    with op.batch_alter_table("pim_history", schema=None) as batch_op:
        batch_op.create_index("ix_pim_history_product_id_version", ["product_id", "version"], unique=False)

    op.create_table(
        "pim_locales",
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("fallback", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_pim_locales")),
    )
    op.create_table(
        "pim_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_pim_meta")),
    )
    op.create_table(
        "pim_nodes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("parent", sa.String(length=64), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("axes", sa.Text(), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("is_variant", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pim_nodes")),
    )
    with op.batch_alter_table("pim_nodes", schema=None) as batch_op:
        batch_op.create_index("ix_pim_nodes_product_id", ["product_id"], unique=False)

    op.create_table(
        "pim_products",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pim_products")),
    )
    with op.batch_alter_table("pim_products", schema=None) as batch_op:
        batch_op.create_index("ix_pim_products_family", ["family"], unique=False)

    op.create_table(
        "pim_readiness",
        sa.Column("variant_id", sa.String(length=64), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("issues", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("variant_id", "channel_id", "locale", name=op.f("pk_pim_readiness")),
    )
    with op.batch_alter_table("pim_readiness", schema=None) as batch_op:
        batch_op.create_index("ix_pim_readiness_channel_id_ready", ["channel_id", "ready"], unique=False)
        batch_op.create_index("ix_pim_readiness_product_id", ["product_id"], unique=False)

    op.create_table(
        "pim_values",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("attribute", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "attribute", "locale", "channel", name=op.f("pk_pim_values")),
    )
    with op.batch_alter_table("pim_values", schema=None) as batch_op:
        batch_op.create_index("ix_pim_values_product_id", ["product_id"], unique=False)

    op.create_table(
        "pim_channel_context",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("rules_dialect", sa.String(length=32), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("locales", sa.Text(), nullable=False),
        sa.Column("vat_inclusive", sa.Boolean(), nullable=False),
        sa.Column("packs", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_pim_channel_context_channel_id_channels")
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_pim_channel_context")),
    )


def downgrade() -> None:
    op.drop_table("pim_channel_context")
    with op.batch_alter_table("pim_values", schema=None) as batch_op:
        batch_op.drop_index("ix_pim_values_product_id")

    op.drop_table("pim_values")
    with op.batch_alter_table("pim_readiness", schema=None) as batch_op:
        batch_op.drop_index("ix_pim_readiness_product_id")
        batch_op.drop_index("ix_pim_readiness_channel_id_ready")

    op.drop_table("pim_readiness")
    with op.batch_alter_table("pim_products", schema=None) as batch_op:
        batch_op.drop_index("ix_pim_products_family")

    op.drop_table("pim_products")
    with op.batch_alter_table("pim_nodes", schema=None) as batch_op:
        batch_op.drop_index("ix_pim_nodes_product_id")

    op.drop_table("pim_nodes")
    op.drop_table("pim_meta")
    op.drop_table("pim_locales")
    with op.batch_alter_table("pim_history", schema=None) as batch_op:
        batch_op.drop_index("ix_pim_history_product_id_version")

    op.drop_table("pim_history")
    op.drop_table("pim_families")
    op.drop_table("pim_categories")
    op.drop_table("pim_attributes")
    op.drop_table("pim_assets")
