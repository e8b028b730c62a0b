"""Large batches: the results-free bulk mode writes what the ordinary mode writes, and a reused idempotency key
inside a large batch (found by the ledger's primary key, not a lookup) still replays or is rejected whole."""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest

from accord.app.engine import Engine
from accord.domain.errors import IdempotencyConflict, InsufficientStock
from accord.domain.ledger import Movement

from .helpers import SKUS, WH1, WH2, A, B, buckets, build_world, dump, events_since, mv, new_engine, outbox_max

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
    # one MovementsRecorded event lists every movement of the transaction, in order
    recorded = [json.loads(r[3]) for r in dumps[1]["outbox"] if r[1] == "MovementsRecorded"]
    assert [[m["key"] for m in e["movements"]] for e in recorded] == [[m.key for m in _mixed("x")]]


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


def test_a_replay_in_a_large_batch_that_no_longer_fits_or_reopens_a_transfer_replays(world: Engine) -> None:
    """The first attempt does not look keys up: a domain error (stock, transfer) redoes the batch with the keys,
    which answers an old key from the ledger instead of re-checking it against today's stock."""
    world.move(mv("receive", A, WH1, 5, "in"))
    world.move(mv("reserve", A, WH1, 5, "order-7"))
    world.move(mv("ship", A, WH1, 5, "ship-7"))
    world.move(mv("receive", B, WH1, 5, "in-b"))
    world.move(mv("transfer_out", B, WH1, 2, "t-1", to_location=WH2))
    fresh = [mv("receive", B, WH2, 1, f"k{i}") for i in range(N)]
    again = [mv("reserve", A, WH1, 5, "order-7"), mv("transfer_out", B, WH1, 2, "t-1", to_location=WH2)]
    results = world.move_batch(fresh + again)
    assert [r.replayed for r in results] == [False] * N + [True, True]
    assert buckets(world, A, WH1) == (0, 0, 0, 0, 0)
    assert buckets(world, B, WH1) == (3, 0, 0, 0, 0)
    assert buckets(world, B, WH2) == (N, 0, 2, 0, 0)
    assert len(world.transfers()) == 1
    assert world.verify() == []


def test_a_large_batch_that_fails_late_writes_nothing(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "in"))
    before = dump(world.db)
    batch = [mv("receive", B, WH2, 1, f"k{i}") for i in range(300)] + [mv("reserve", A, WH1, 6, "too-many")]
    for want_results in (True, False):
        with pytest.raises(InsufficientStock, match="movement #300"):
            world.move_batch(batch, want_results=want_results)
        assert dump(world.db) == before
    assert world.verify() == []


def test_a_large_batch_in_the_callers_transaction_replays_rejects_and_rolls_back_alone(world: Engine) -> None:
    """``move_batch_in`` writes a large batch under a savepoint: a reused key redoes it with the lookup, and a
    failing batch leaves the caller's transaction usable (and writes nothing of its own)."""
    world.move(mv("receive", A, WH1, 5, "po-1"))
    with world.db.tx() as tx:
        replay = world.move_batch_in(
            tx, [mv("receive", B, WH2, 1, f"k{i}") for i in range(N)] + [mv("receive", A, WH1, 5, "po-1")]
        )
        assert [r.replayed for r in replay] == [False] * N + [True]
        with pytest.raises(IdempotencyConflict, match=f"movement #{N}"):
            world.move_batch_in(
                tx, [mv("receive", B, WH2, 1, f"j{i}") for i in range(N)] + [mv("receive", A, WH1, 6, "po-1")]
            )
        with pytest.raises(InsufficientStock):
            world.move_batch_in(
                tx, [mv("receive", B, WH2, 1, f"h{i}") for i in range(N)] + [mv("reserve", A, WH1, 6, "x")]
            )
    assert buckets(world, A, WH1) == (5, 0, 0, 0, 0)
    assert buckets(world, B, WH2) == (N, 0, 0, 0, 0)  # only the first batch
    assert world.stats["movements.receive"] == 1 + N
    assert world.verify() == []


def test_the_event_lists_only_what_the_transaction_recorded(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "po-1"))
    before = outbox_max(world.db)
    world.move_batch([mv("receive", A, WH1, 5, "po-1"), mv("receive", B, WH2, 2, "po-2")])  # po-1 replays
    events = events_since(world.db, before)
    assert [(e.type, e.key) for e in events[:1]] == [("MovementsRecorded", B)]  # one SKU moved: its key
    assert [m["key"] for m in events[0].data["movements"]] == ["po-2"]
    assert events[0].data["balances"] == [[B, WH2, 2, 0, 0, 0, 0]]
    before = outbox_max(world.db)
    world.move_batch([mv("receive", A, WH1, 5, "po-1"), mv("receive", B, WH2, 2, "po-2")])  # all replay
    assert events_since(world.db, before) == []
