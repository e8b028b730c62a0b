"""Every statement the engine runs, built with SQLAlchemy Core and compiled once per backend.

The only backend differences are here: how a list parameter is passed (SQLite ``json_each``,
PostgreSQL ``= ANY``), upserts, and row locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from accord.store import schema as t
from accord.store.db import Compiled, Database

BUCKET_COLS = ("on_hand", "committed", "in_transit", "damaged", "quarantine")
LEDGER_COLS = (
    "idem_key",
    "leg",
    "kind",
    "sku_id",
    "location_id",
    "d_on_hand",
    "d_committed",
    "d_in_transit",
    "d_damaged",
    "d_quarantine",
    "qty",
    "reason",
    "ref",
    "fingerprint",
    "created_at",
)
OUTBOX_COLS = ("type", "key", "data", "created_at")
CONFIG_VERSION: sa.ColumnClause[Any] = sa.literal_column("'config_version'")


def _params(*names: str) -> dict[str, Any]:
    return {n: sa.bindparam(n) for n in names}


# tags of the rows the combined ``load`` statement returns: (tag, version, text, text, text)
#   LOAD_VERSION: (0, config version, NULL, NULL, NULL)
#   LOAD_KEY:     (1, NULL, idempotency key, fingerprint, NULL)
#   LOAD_STATE:   (2, NULL, sku, packed ATS JSON, packed balances JSON)  (``sku_ats``)
LOAD_VERSION, LOAD_KEY, LOAD_STATE = 0, 1, 2


@dataclass(frozen=True)
class Statements:
    load: Compiled  # config version + prior keys + packed state (ATS and balances) of the SKUs, in one round trip
    load_one: Compiled  # the same for one movement (point lookups instead of list parameters)
    skus_existing: Compiled
    skus_lock: Compiled | None
    ledger_by_keys: Compiled
    balances_for_skus: Compiled
    ats_for_skus: Compiled  # packed ATS and balances of a list of SKUs
    transfers_by_ids: Compiled
    insert_ledger: Compiled
    insert_balance: Compiled  # a SKU × location's first balance row
    add_balance: Compiled  # adds bucket deltas to an existing balance row (params: 5 deltas, updated_at, sku, loc)
    upsert_state: Compiled  # the packed ATS and balances of a SKU (movements)
    insert_outbox: Compiled
    insert_transfer: Compiled
    update_transfer: Compiled
    config_version: Compiled
    bump_config_version: Compiled
    ats_sku: Compiled
    json_list: bool  # SQLite: list parameters travel as JSON text


def build(db: Database) -> Statements:
    is_sqlite = db.backend == "sqlite"

    def in_list(col: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
        if is_sqlite:
            sub: sa.Select[Any] = sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam(name)))
            return col.in_(sub)
        return col == sa.func.any(sa.bindparam(name))

    def upsert(table: sa.Table, keys: tuple[str, ...], cols: tuple[str, ...]) -> sa.ClauseElement:
        ins_fn = sqlite.insert if is_sqlite else postgresql.insert
        ins = ins_fn(table).values(_params(*keys, *cols))
        return ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})

    c = db.compile
    skus_lock = None
    if not is_sqlite:
        skus_lock = c(sa.select(t.skus.c.id).where(in_list(t.skus.c.id, "ids")).order_by(t.skus.c.id).with_for_update())
    b = t.balances
    lit = sa.literal_column
    num: Any = sa.cast(sa.null(), sa.BigInteger)
    txt: Any = sa.cast(sa.null(), sa.Text)
    a = t.sku_ats
    version_q = sa.select(lit(str(LOAD_VERSION)), t.meta.c.value, txt, txt, txt).where(t.meta.c.key == CONFIG_VERSION)
    leg0 = t.ledger.c.leg == sa.literal_column("0")  # the first leg carries a movement's key and fingerprint
    lg = t.ledger
    key_cols: tuple[Any, ...] = (
        lit(str(LOAD_KEY)),
        num,
        sa.cast(lg.c.idem_key, sa.Text),
        sa.cast(lg.c.fingerprint, sa.Text),
    )
    state_cols: tuple[Any, ...] = (lit(str(LOAD_STATE)), num, sa.cast(a.c.sku_id, sa.Text), a.c.ats, a.c.balances)
    load = sa.union_all(
        version_q,
        sa.select(*key_cols, txt).where(leg0, in_list(t.ledger.c.idem_key, "keys")),
        sa.select(*state_cols).where(in_list(a.c.sku_id, "ids")),
    )
    load_one = sa.union_all(
        version_q,
        sa.select(*key_cols, txt).where(t.ledger.c.idem_key == sa.bindparam("key"), leg0),
        sa.select(*state_cols).where(a.c.sku_id == sa.bindparam("sku")),
    )
    # relative: the CHECK constraint judges the row as stored, and the row stays the sum of its ledger legs
    add_balance = (
        sa.update(b)
        .where(b.c.sku_id == sa.bindparam("sku"), b.c.location_id == sa.bindparam("loc"))
        .values({c: b.c[c] + sa.bindparam(f"d_{c}") for c in BUCKET_COLS} | {"updated_at": sa.bindparam("at")})
    )
    return Statements(
        load=c(load),
        load_one=c(load_one),
        skus_existing=c(sa.select(t.skus.c.id).where(in_list(t.skus.c.id, "ids"))),
        skus_lock=skus_lock,
        ledger_by_keys=c(
            sa.select(t.ledger.c.idem_key, t.ledger.c.fingerprint).where(
                t.ledger.c.leg == sa.literal_column("0"), in_list(t.ledger.c.idem_key, "keys")
            )
        ),
        balances_for_skus=c(
            sa.select(b.c.sku_id, b.c.location_id, *(b.c[n] for n in BUCKET_COLS)).where(in_list(b.c.sku_id, "ids"))
        ),
        ats_for_skus=c(
            sa.select(t.sku_ats.c.sku_id, t.sku_ats.c.ats, t.sku_ats.c.balances).where(
                in_list(t.sku_ats.c.sku_id, "ids")
            )
        ),
        transfers_by_ids=c(
            sa.select(
                t.transfers.c.id,
                t.transfers.c.sku_id,
                t.transfers.c.to_location,
                t.transfers.c.qty_shipped,
                t.transfers.c.qty_received,
            ).where(in_list(t.transfers.c.id, "ids"))
        ),
        insert_ledger=c(sa.insert(t.ledger).values(_params(*LEDGER_COLS))),
        insert_balance=c(sa.insert(b).values(_params("sku_id", "location_id", *BUCKET_COLS, "updated_at"))),
        add_balance=c(add_balance),
        upsert_state=c(upsert(t.sku_ats, ("sku_id",), ("ats", "balances", "updated_at"))),
        insert_outbox=c(sa.insert(t.outbox).values(_params(*OUTBOX_COLS))),
        insert_transfer=c(
            sa.insert(t.transfers).values(
                _params(
                    "id",
                    "sku_id",
                    "from_location",
                    "to_location",
                    "qty_shipped",
                    "qty_received",
                    "created_at",
                    "updated_at",
                )
            )
        ),
        update_transfer=c(
            sa.update(t.transfers)
            .where(t.transfers.c.id == sa.bindparam("tid"))
            .values(qty_received=sa.bindparam("qty_received"), updated_at=sa.bindparam("updated_at"))
        ),
        config_version=c(sa.select(t.meta.c.value).where(t.meta.c.key == CONFIG_VERSION)),
        bump_config_version=c(
            sa.update(t.meta)
            .where(t.meta.c.key == CONFIG_VERSION)
            .values(value=t.meta.c.value + sa.literal_column("1"))
        ),
        ats_sku=c(sa.select(t.sku_ats.c.ats).where(t.sku_ats.c.sku_id == sa.bindparam("sku"))),
        json_list=is_sqlite,
    )
