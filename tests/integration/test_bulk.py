"""Large batches: the results-free bulk mode writes what the ordinary mode writes, and a reused idempotency key
inside a large batch (found by the ledger's primary key, not a lookup) still replays or is rejected whole."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import pytest

from accord.app.engine import Engine
from accord.domain.errors import IdempotencyConflict
from accord.domain.ledger import Movement

from .helpers import SKUS, WH1, WH2, A, B, buckets, build_world, dump, mv, new_engine

N = 60  # above the size at which SQLite batches stop looking keys up first


def _mixed(prefix: str) -> list[Movement]:
    out: list[Movement] = []
    for i in range(N):
        sku = SKUS[i % len(SKUS)]
        loc = (WH1, WH2)[i % 2]
        out.append(mv("receive", sku, loc, 3 + i % 4, f"{prefix}r{i}"))
        if i % 3 == 0:
            out.append(mv("reserve", sku, loc, 1, f"{prefix}s{i}"))
    out.append(mv("transfer_out", A, WH1, 2, f"{prefix}t", to_location=WH2))
    out.append(mv("damage", B, WH2, 1, f"{prefix}d"))
    return out


def test_bulk_mode_writes_exactly_what_the_ordinary_mode_writes(sqlite_template: Path, tmp_path: Path) -> None:
    dumps = []
    for want_results in (True, False):
        path = tmp_path / f"results-{want_results}.db"
        shutil.copyfile(sqlite_template, path)
        eng = new_engine(f"sqlite:///{path}")
        try:
            build_world(eng)
            results = eng.move_batch(_mixed("x"), want_results=want_results)
            assert len(results) == (len(_mixed("x")) if want_results else 0)
            assert eng.stats["movements.receive"] == N
            assert eng.verify() == []
            dumps.append(dump(eng.db))
        finally:
            eng.db.dispose()
    # ledger, balances, transfers, ATS and every outbox event (with its balances) are the same
    assert dumps[0] == dumps[1]
    assert len(dumps[1]["outbox"]) > len(_mixed("x"))


def test_a_key_reused_in_a_large_batch_replays_and_moves_once(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "po-1"))
    before = buckets(world, A, WH1)
    batch = [mv("receive", B, WH2, 1, f"k{i}") for i in range(N)] + [mv("receive", A, WH1, 5, "po-1")]
    results = world.move_batch(batch)
    assert [r.replayed for r in results] == [False] * N + [True]
    assert buckets(world, A, WH1) == before
    assert buckets(world, B, WH2) == (N, 0, 0, 0, 0)
    assert world.verify() == []


def test_a_key_reused_with_another_payload_in_a_large_batch_writes_nothing(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "po-1"))
    before = dump(world.db)
    batch = [mv("receive", B, WH2, 1, f"k{i}") for i in range(N)] + [mv("receive", A, WH1, 6, "po-1")]
    with pytest.raises(IdempotencyConflict, match=f"movement #{N}: idempotency key 'po-1'"):
        world.move_batch(batch)
    with pytest.raises(IdempotencyConflict):
        world.move_batch(batch, want_results=False)
    assert dump(world.db) == before
    # the batch's own keys were never used: without the bad movement it goes through
    assert len(world.move_batch(batch[:N])) == N


def test_a_large_batch_leaves_the_garbage_collector_as_it_found_it(world: Engine) -> None:
    assert gc.isenabled()
    world.move_batch([mv("receive", A, WH1, 1, f"g{i}") for i in range(300)])
    assert gc.isenabled()
    with pytest.raises(IdempotencyConflict):
        world.move_batch([mv("receive", A, WH1, 1, f"h{i}") for i in range(300)] + [mv("receive", A, WH1, 2, "g0")])
    assert gc.isenabled()
    gc.disable()
    try:
        world.move_batch([mv("receive", A, WH1, 1, f"i{i}") for i in range(300)])
        assert not gc.isenabled()  # a caller that turned it off keeps it off
    finally:
        gc.enable()
