"""PIM tables on the shared metadata (migrations ``0002_pim``, ``0008_pim_rules``).

Definitions (attributes, families, categories, locales) are stored as small JSON documents: they are read
whole into a :class:`accord.domain.pim.Catalog` and cached per ``pim_meta['catalog']`` version. Product trees
and values are rows, so one product loads with two indexed queries and a value edit writes one row.
``locale`` and ``channel`` of a value are ``''`` (not NULL) when the attribute is not localizable/channel-specific,
so they can be part of the primary key on both backends. Times are epoch milliseconds.
"""

from __future__ import annotations

import sqlalchemy as sa

from accord.store.schema import ID, metadata

# counters bumped by definition changes; a cached catalogue / channel set is reused while they are unchanged
pim_meta = sa.Table(
    "pim_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

pim_locales = sa.Table(
    "pim_locales",
    metadata,
    sa.Column("code", sa.String(16), primary_key=True),
    sa.Column("fallback", sa.String(16), nullable=True),
)

pim_categories = sa.Table(
    "pim_categories",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("parent", sa.String(64), nullable=True),
    sa.Column("labels", sa.Text, nullable=False),  # JSON {locale: label}
    sa.Column("tags", sa.Text, nullable=False),  # JSON [tag]
)

pim_attributes = sa.Table(
    "pim_attributes",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),  # JSON: flags, labels, options, dimension, ...
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

pim_families = sa.Table(
    "pim_families",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("attributes", sa.Text, nullable=False),  # JSON [attribute code]
    sa.Column("labels", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

pim_products = sa.Table(
    "pim_products",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("family", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
    sa.Index("ix_pim_products_family", "family"),
)

# the variant tree: the root node has the product's id; leaves are variants (ledger SKUs)
pim_nodes = sa.Table(
    "pim_nodes",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("product_id", ID, nullable=False),
    sa.Column("parent", ID, nullable=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("axes", sa.Text, nullable=False),  # JSON [attribute code]
    sa.Column("categories", sa.Text, nullable=False),  # JSON [category code]
    sa.Column("is_variant", sa.Boolean, nullable=False),
    sa.Index("ix_pim_nodes_product_id", "product_id"),
)

pim_values = sa.Table(
    "pim_values",
    metadata,
    sa.Column("node_id", ID, primary_key=True),
    sa.Column("attribute", sa.String(64), primary_key=True),
    sa.Column("locale", sa.String(16), primary_key=True),  # '' = not localized
    sa.Column("channel", ID, primary_key=True),  # '' = every channel
    sa.Column("product_id", ID, nullable=False),
    sa.Column("value", sa.Text, nullable=False),  # JSON (accord.domain.pim.value_to_json)
    sa.Index("ix_pim_values_product_id", "product_id"),
)

# assets referenced by values (image/document URL or path, mime type, pixel size)
pim_assets = sa.Table(
    "pim_assets",
    metadata,
    sa.Column("uri", sa.String(1000), primary_key=True),
    sa.Column("mime_type", sa.String(128), nullable=False),
    sa.Column("width_px", sa.Integer, nullable=True),
    sa.Column("height_px", sa.Integer, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# every value change: who, when, which key, old → new, and the product version it produced
pim_history = sa.Table(
    "pim_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("product_id", ID, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("node_id", ID, nullable=False),
    sa.Column("attribute", sa.String(64), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("channel", ID, nullable=False),
    sa.Column("old", sa.Text, nullable=True),  # JSON; NULL = not set
    sa.Column("new", sa.Text, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_pim_history_product_id_version", "product_id", "version"),
)

# what readiness needs about a channel beyond the core channel row (dialect, region, currency live there)
pim_channel_context = sa.Table(
    "pim_channel_context",
    metadata,
    sa.Column("channel_id", ID, sa.ForeignKey("channels.id"), primary_key=True),
    sa.Column("rules_dialect", sa.String(32), nullable=False),  # rule file to apply (default: the core dialect)
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("locales", sa.Text, nullable=False),  # JSON [locale]
    sa.Column("vat_inclusive", sa.Boolean, nullable=False),
    sa.Column("packs", sa.Text, nullable=True),  # JSON [pack] or NULL = every pack whose scope matches
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# sparse: a row only for a (variant, channel, locale) with issues; a key without a row is ready, score 100, no issues
# (every variant has readiness on every channel locale). ``ready = false`` rows are what blocks publishing.
pim_readiness = sa.Table(
    "pim_readiness",
    metadata,
    sa.Column("variant_id", ID, primary_key=True),
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("locale", sa.String(16), primary_key=True),
    sa.Column("product_id", ID, nullable=False),
    sa.Column("ready", sa.Boolean, nullable=False),
    sa.Column("score", sa.SmallInteger, nullable=False),
    sa.Column("issues", sa.Text, nullable=False),  # JSON [{code, attribute, message, severity, rule}]
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_pim_readiness_channel_id_ready", "channel_id", "ready"),
    sa.Index("ix_pim_readiness_product_id", "product_id"),
)

# rule files users add (migration ``0008_pim_rules``): a dialect or pack here replaces a built-in one of the same
# kind and name; the text is kept as given (TOML or JSON) and parsed when the catalogue state is loaded
pim_rulesets = sa.Table(
    "pim_rulesets",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),  # dialect | pack
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("format", sa.String(8), nullable=False),  # toml | json
    sa.Column("source", sa.String(500), nullable=False),  # the file it came from
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=False),
)

PIM_TABLES = (
    pim_meta,
    pim_locales,
    pim_categories,
    pim_attributes,
    pim_families,
    pim_products,
    pim_nodes,
    pim_values,
    pim_assets,
    pim_history,
    pim_channel_context,
    pim_readiness,
    pim_rulesets,
)
