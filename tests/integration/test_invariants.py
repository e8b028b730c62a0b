"""Invariants 1 and 2 under a seeded random walk, and verify() catching tampering."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import sqlalchemy as sa

from accord.app.engine import Engine
from accord.domain.availability import StockPolicy
from accord.domain.errors import InsufficientStock
from accord.domain.ledger import Movement
from accord.store import schema as t

from .helpers import AMZ, EBAY, FBA, SKUS, STORE, WH1, WH2, A, buckets, ledger_rows, mv

LOCS = (WH1, WH2, STORE, FBA)
Key = tuple[str, str]


class Model:
    """An independent model of the buckets (on_hand, committed, in_transit, damaged, quarantine)."""

    def __init__(self) -> None:
        self.b: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        self.transfers: dict[str, tuple[str, str]] = {}  # id -> (sku, destination)
        self.open_qty: dict[str, int] = {}  # id -> units still in transit

    def avail(self, k: Key) -> int:
        return self.b[k][0] - self.b[k][1]


def _next_movement(rng: random.Random, model: Model, i: int) -> tuple[Movement, bool]:
    """A random movement and whether the model says it must succeed (it applies it if so)."""
    sku, loc = rng.choice(SKUS), rng.choice(LOCS)
    k = (sku, loc)
    b = model.b[k]
    key = f"walk-{i}"
    kind = rng.choice(
        ["receive", "receive", "adjust", "count", "reserve", "reserve", "release", "ship", "transfer_out",
         "transfer_in", "damage", "quarantine", "unquarantine", "scrap"]
    )  # fmt: skip
    overdraw = rng.random() < 0.08  # now and then ask for one unit more than the bucket holds

    def qty_from(have: int) -> tuple[int, bool]:
        if overdraw or have <= 0:
            return have + 1, False
        return rng.randint(1, have), True

    if kind == "receive":
        q = rng.randint(1, 20)
        b[0] += q
        return mv(kind, sku, loc, q, key), True
    if kind == "adjust":
        if rng.random() < 0.5:
            q = rng.randint(1, 5)
            b[0] += q
            return mv(kind, sku, loc, q, key, reason="found"), True
        q, ok = qty_from(model.avail(k))
        if ok:
            b[0] -= q
        return mv(kind, sku, loc, -q, key, reason="lost"), ok
    if kind == "count":
        q = b[1] + rng.randint(0, 10)
        b[0] = q
        return mv(kind, sku, loc, q, key, reason="cycle"), True
    if kind in ("reserve", "damage", "quarantine"):
        q, ok = qty_from(model.avail(k))
        if ok:
            if kind == "reserve":
                b[1] += q
            else:
                b[0] -= q
                b[3 if kind == "damage" else 4] += q
        return mv(kind, sku, loc, q, key, reason="r"), ok
    if kind in ("release", "ship"):
        q, ok = qty_from(b[1])
        if ok:
            b[1] -= q
            if kind == "ship":
                b[0] -= q
        return mv(kind, sku, loc, q, key), ok
    if kind == "transfer_out":
        dest = rng.choice([x for x in LOCS if x != loc])
        q, ok = qty_from(model.avail(k))
        if ok:
            b[0] -= q
            model.b[(sku, dest)][2] += q
            model.transfers[key] = (sku, dest)
            model.open_qty[key] = q
        return mv(kind, sku, loc, q, key, to_location=dest), ok
    if kind == "transfer_in":
        open_ = sorted(tid for tid, left in model.open_qty.items() if left > 0)
        if not open_:
            b[0] += 1
            return mv("receive", sku, loc, 1, key), True
        tid = rng.choice(open_)
        tsku, dest = model.transfers[tid]
        q, ok = qty_from(model.open_qty[tid])
        if ok:
            model.open_qty[tid] -= q
            model.b[(tsku, dest)][2] -= q
            model.b[(tsku, dest)][0] += q
        return mv(kind, tsku, dest, q, key, transfer_id=tid), ok
    if kind == "unquarantine":
        q, ok = qty_from(b[4])
        if ok:
            b[4] -= q
            b[0] += q
        return mv(kind, sku, loc, q, key), ok
    source = rng.choice(["damaged", "quarantine", "on_hand"])
    have = {"damaged": b[3], "quarantine": b[4], "on_hand": model.avail(k)}[source]
    q, ok = qty_from(have)
    if ok:
        b[{"damaged": 3, "quarantine": 4, "on_hand": 0}[source]] -= q
    return mv("scrap", sku, loc, q, key, source_bucket=source, reason="gone"), ok


def test_random_walk_keeps_every_invariant(world: Engine) -> None:
    world.update_channel(EBAY, policy=StockPolicy(buffer_units=2, pool_pct=75, max_qty=30, zero_at_or_below=1))
    rng = random.Random(20260101)
    model = Model()
    applied = refused = 0
    for i in range(400):
        m, ok = _next_movement(rng, model, i)
        if ok:
            world.move(m)
            applied += 1
        else:
            with pytest.raises(InsufficientStock):
                world.move(m)
            refused += 1
        if i % 200 == 199:
            assert world.verify() == []
    assert applied > 200 and refused > 10  # the walk exercised both paths

    # every stored balance equals the independent model, and invariant 2 holds
    stored = {(s, loc): b.as_tuple() for s, loc, b in world.balances()}
    for k, v in model.b.items():
        assert stored.get(k, (0, 0, 0, 0, 0)) == tuple(v), k
    for b in stored.values():
        assert min(b) >= 0 and b[1] <= b[0]
    # invariant 1: replaying the ledger rows reproduces every balance
    replay: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for r in ledger_rows(world.db):
        acc = replay[(r["sku_id"], r["location_id"])]
        for n, col in enumerate(("d_on_hand", "d_committed", "d_in_transit", "d_damaged", "d_quarantine")):
            acc[n] += r[col]
    assert {k: tuple(v) for k, v in replay.items()} == stored
    # open transfers agree with in_transit
    for tr in world.transfers(open_only=True):
        assert model.open_qty[tr["id"]] == tr["qty_shipped"] - tr["qty_received"]
    assert world.recompute_ats() == 0
    assert world.verify() == []


def test_verify_reports_a_tampered_balance(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    world.move(mv("reserve", A, WH1, 2, "b"))
    assert world.verify() == []
    bal = t.balances
    with world.db.engine.begin() as conn:
        conn.execute(
            sa.update(bal).where(bal.c.sku_id == A, bal.c.location_id == WH1).values(on_hand=bal.c.on_hand + 5)
        )
    problems = world.verify()
    kinds = {(p.what, p.sku, p.where) for p in problems}
    assert ("balance", A, WH1) in kinds
    mismatch = next(p for p in problems if p.what == "balance")
    assert "on_hand=10" in mismatch.expected
    assert "on_hand=15" in mismatch.actual
    # the stored ATS no longer follows the balances either
    assert ("ats", A, AMZ) in kinds


def test_verify_reports_a_deleted_ledger_row_and_a_wrong_transfer(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    world.move(mv("transfer_out", A, WH1, 4, "t", to_location=WH2))
    with world.db.engine.begin() as conn:
        conn.execute(sa.delete(t.ledger).where(t.ledger.c.idem_key == "a"))
        conn.execute(sa.update(t.transfers).values(qty_received=1))
    found = {(p.what, p.sku, p.where) for p in world.verify()}
    assert ("balance", A, WH1) in found
    assert ("transfer", A, WH2) in found
    assert buckets(world, A, WH1) == (6, 0, 0, 0, 0)
