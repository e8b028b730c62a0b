"""Many processes reserving the same scarce stock: no oversell, nothing lost, every invariant intact."""

from __future__ import annotations

import multiprocessing
import queue
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from accord.app.engine import Engine

from .helpers import AMZ, EBAY, FBA, SHOP, WH1, WH2, A, B, balance, ledger_rows, mv, reserve_worker, same_keys_worker

TIMEOUT_S = 120


def processes_for(backend_name: str) -> int:
    return 4 if backend_name == "sqlite" else 8


def spawn(n: int, target: Callable[..., None], args: Callable[[int], tuple[Any, ...]]) -> list[Any]:
    """Start ``n`` spawned processes (``target(*args(i), barrier, results)``), release them together and
    return what each put on the results queue."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(n)
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args(i), barrier, results), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    collected: list[Any] = []
    try:
        for _ in procs:
            collected.append(results.get(timeout=TIMEOUT_S))
    except queue.Empty:
        pytest.fail(f"only {len(collected)} of {n} workers reported within {TIMEOUT_S}s")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    errors = [item[-1] for item in collected if item[-1]]
    assert errors == []
    assert all(p.exitcode == 0 for p in procs)
    return collected


def run_workers(url: str, n: int, targets: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Every process reserves 1 unit at a time round-robin over ``targets``; returns every success."""
    collected = spawn(n, reserve_worker, lambda i: (url, targets, f"p{i}"))
    return [item for _, done, _ in collected for item in done]


def check_no_reservation_lost(world: Engine, done: list[tuple[str, str, str]]) -> None:
    keys = [k for k, _, _ in done]
    assert len(keys) == len(set(keys))
    reserve_rows = [r for r in ledger_rows(world.db) if r["kind"] == "reserve"]
    assert sorted(r["idem_key"] for r in reserve_rows) == sorted(keys)
    assert all(r["d_committed"] == 1 for r in reserve_rows)


def test_scarce_sku_is_never_oversold(world: Engine) -> None:
    units = 200
    world.move(mv("receive", A, WH1, units, "stock"))
    n = processes_for(world.db.backend)

    done = run_workers(world.db.url, n, [(A, WH1)])

    assert len(done) == units  # exactly the stock that was available, not one more or less
    b = balance(world, A, WH1)
    assert (b.on_hand, b.committed) == (units, units)
    check_no_reservation_lost(world, done)
    assert world.ats(A) == {AMZ: 0, EBAY: 0, SHOP: 0}
    assert world.verify() == []


def test_mixed_skus_and_locations(world: Engine) -> None:
    stock = {(A, WH1): 40, (A, WH2): 30, (B, WH1): 25, (B, FBA): 35}
    world.move_batch([mv("receive", s, loc, q, f"in-{s}-{loc}") for (s, loc), q in stock.items()])
    n = processes_for(world.db.backend)

    done = run_workers(world.db.url, n, list(stock))

    assert Counter((s, loc) for _, s, loc in done) == stock
    for (s, loc), q in stock.items():
        b = balance(world, s, loc)
        assert (b.on_hand, b.committed) == (q, q)
    check_no_reservation_lost(world, done)
    assert world.ats(A) == {AMZ: 0, EBAY: 0, SHOP: 0}
    assert world.ats(B) == {AMZ: 0, EBAY: 0, SHOP: 0}
    assert world.recompute_ats() == 0
    assert world.verify() == []


def test_the_same_keys_from_many_processes_move_once(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 100, "stock"))
    keys = [f"order-{i}" for i in range(40)]
    n = processes_for(world.db.backend)

    collected = spawn(n, same_keys_worker, lambda i: (world.db.url, A, WH1, keys))

    fresh = [k for got, _, _ in collected for k in got]
    replayed = [k for _, got, _ in collected for k in got]
    assert sorted(fresh) == sorted(keys)  # each key applied by exactly one process
    assert len(replayed) == len(keys) * (n - 1)  # and answered as a replay everywhere else
    b = balance(world, A, WH1)
    assert (b.on_hand, b.committed) == (100, 40)
    check_no_reservation_lost(world, [(k, A, WH1) for k in keys])
    assert world.verify() == []
