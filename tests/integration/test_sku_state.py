"""Each SKU's packed row (``sku_ats``: its ATS and a copy of its balances) is what a movement reads: it follows
every movement, ``verify`` compares it with the balance rows, ``recompute-ats`` repairs it, and migration 0013
fills it from the balance rows (and drops it again on downgrade)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from accord.app.engine import Engine, Mismatch
from accord.store import schema as t
from accord.store.db import Database
from accord.store.migrate import alembic_config, upgrade

from .helpers import WH1, WH2, A, B, dump, mv


def packed(engine: Engine) -> dict[str, dict[str, list[int]]]:
    with engine.db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.sku_ats.c.sku_id, t.sku_ats.c.balances)).all()
        conn.rollback()
    return {r[0]: json.loads(r[1]) for r in rows}


def rows_of(engine: Engine) -> dict[str, dict[str, list[int]]]:
    out: dict[str, dict[str, list[int]]] = {}
    for sku, loc, b in engine.balances():
        out.setdefault(sku, {})[loc] = list(b.as_tuple())
    return out


def test_the_packed_copy_follows_every_movement(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "r1"))
    world.move_batch([mv("reserve", A, WH1, 3, "s1"), mv("transfer_out", A, WH1, 2, "t1", to_location=WH2)])
    world.move_batch([mv("receive", B, WH2, 4, "r2"), mv("transfer_in", A, WH2, 2, "i1", transfer_id="t1")])
    world.move(mv("damage", B, WH2, 1, "d1", reason="wet"))
    assert (
        packed(world)
        == rows_of(world)
        == {
            A: {WH1: [8, 3, 0, 0, 0], WH2: [2, 0, 0, 0, 0]},
            B: {WH2: [3, 0, 0, 1, 0]},
        }
    )
    assert world.verify() == []


def test_a_drifted_copy_is_reported_and_recompute_repairs_it(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "r1"))
    with world.db.engine.begin() as conn:  # simulate a bug: the copy no longer matches the balance row
        conn.execute(sa.update(t.sku_ats).where(t.sku_ats.c.sku_id == A).values(balances='{"WH-DE-1": [9,0,0,0,0]}'))
    assert world.verify() == [
        Mismatch(
            "packed",
            A,
            WH1,
            "on_hand=5 committed=0 in_transit=0 damaged=0 quarantine=0",
            "on_hand=9 committed=0 in_transit=0 damaged=0 quarantine=0",
        )
    ]
    assert world.recompute_ats() == 0  # no ATS value changed; the copy is rewritten from the rows
    assert world.verify() == []
    world.move(mv("reserve", A, WH1, 5, "s1"))  # the repaired copy allows exactly what the rows hold
    assert packed(world)[A] == {WH1: [5, 5, 0, 0, 0]}
    assert world.verify() == []


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
def test_a_balance_row_missing_under_the_copy_fails_the_movement_and_writes_nothing(world: Engine, batch: bool) -> None:
    world.move(mv("receive", A, WH1, 5, "r1"))
    with world.db.engine.begin() as conn:  # simulate a bug: the copy holds a row the table lost
        conn.execute(sa.delete(t.balances).where(t.balances.c.sku_id == A))
    before = dump(world.db)
    moves = [mv("reserve", A, WH1, 1, "s1")] + ([mv("receive", B, WH2, 1, "r2")] if batch else [])
    with pytest.raises(RuntimeError, match="missing"):
        world.move_batch(moves)
    assert dump(world.db) == before


def _columns(db: Database, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(db.engine).get_columns(table)]


def test_migration_0013_fills_the_copy_from_the_rows_and_downgrades(empty_backend: Any) -> None:
    db = Database(empty_backend.url)
    try:
        upgrade(db, "0010_core_speed")
        cols = ("sku_id", "location_id", "on_hand", "committed", "in_transit", "damaged", "quarantine", "updated_at")
        bal = sa.table("balances", *(sa.column(c) for c in cols))
        ats = sa.table("sku_ats", sa.column("sku_id"), sa.column("ats"), sa.column("updated_at"))
        with db.engine.begin() as conn:
            conn.execute(
                sa.insert(bal),
                [
                    {"sku_id": "A", "location_id": "W1", "on_hand": 5, "committed": 1, "in_transit": 0,
                     "damaged": 0, "quarantine": 0, "updated_at": 1},
                    {"sku_id": "A", "location_id": "W2", "on_hand": 2, "committed": 0, "in_transit": 3,
                     "damaged": 0, "quarantine": 1, "updated_at": 1},
                    {"sku_id": "B", "location_id": "W1", "on_hand": 4, "committed": 0, "in_transit": 0,
                     "damaged": 2, "quarantine": 0, "updated_at": 1},
                ],
            )  # fmt: skip
            conn.execute(sa.insert(ats), [{"sku_id": "A", "ats": '{"shop": 4}', "updated_at": 1},
                                          {"sku_id": "C", "ats": "{}", "updated_at": 1}])  # fmt: skip

        upgrade(db, "0013_sku_state")
        with db.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT sku_id, ats, balances FROM sku_ats ORDER BY sku_id")).all()
            conn.rollback()
        assert [(r[0], json.loads(r[1]), json.loads(r[2])) for r in rows] == [
            ("A", {"shop": 4}, {"W1": [5, 1, 0, 0, 0], "W2": [2, 0, 3, 0, 1]}),
            ("B", {}, {"W1": [4, 0, 0, 2, 0]}),  # balances but no packed row before: one is made
            ("C", {}, {}),  # a packed row without balances: nothing to copy
        ]

        cfg = alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0010_core_speed")
        assert _columns(db, "sku_ats") == ["sku_id", "ats", "updated_at"]
        if db.backend == "sqlite":
            with db.engine.connect() as conn:
                ddl = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'sku_ats'").scalar()
                conn.rollback()
            assert "WITHOUT ROWID" in str(ddl)
        upgrade(db, "0013_sku_state")
        assert "balances" in _columns(db, "sku_ats")
    finally:
        db.dispose()
