"""Available-to-sell per channel: platform stock, policies, incremental vs full recompute, channel changes."""

from __future__ import annotations

import contextlib
import random

import pytest
import sqlalchemy as sa

from accord.app.engine import AtsChange, Engine
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.errors import InsufficientStock, InvalidConfiguration, InvalidInput, NotFound
from accord.store import schema as t

from .helpers import (
    AMZ,
    EBAY,
    FBA,
    SHOP,
    SKUS,
    STORE,
    WH1,
    WH2,
    A,
    B,
    ats_changes_in,
    ats_snapshot,
    dump,
    events_since,
    mv,
    outbox_max,
)


def test_platform_stock_counts_only_for_its_owner_channel(world: Engine) -> None:
    result = world.move(mv("receive", A, FBA, 7, "fba-in"))
    assert result.ats_changes == [AtsChange(A, AMZ, 0, 7)]
    assert world.ats(A) == {AMZ: 7, EBAY: 0, SHOP: 0}
    world.move(mv("receive", A, WH1, 3, "wh-in"))
    assert world.ats(A) == {AMZ: 10, EBAY: 0, SHOP: 3}
    assert world.ats(A, SHOP) == {SHOP: 3}


def test_platform_stock_cannot_fulfil_another_channel(world: Engine) -> None:
    before = dump(world.db)
    with pytest.raises(InvalidConfiguration, match=FBA):
        world.add_channel(Channel("otto-de", "otto", "eu", "EUR", (WH1, FBA)))
    with pytest.raises(InvalidConfiguration, match=FBA):
        world.update_channel(SHOP, locations=[WH1, FBA])
    assert dump(world.db) == before
    assert world.config().channels[SHOP].locations == (WH1, WH2)


def test_platform_location_needs_an_owner_and_only_it_has_one(engine: Engine) -> None:
    with pytest.raises(InvalidConfiguration):
        engine.add_location(Location("FBA-X", LocationKind.PLATFORM_FC, "eu", "DE"))
    with pytest.raises(InvalidConfiguration):
        engine.add_location(Location("WH-X", LocationKind.WAREHOUSE, "eu", "DE", owner_channel="amazon-de"))
    assert engine.config().locations == {}


@pytest.mark.parametrize(
    ("policy", "on_hand", "expected"),
    [
        (StockPolicy(), 20, 20),
        (StockPolicy(buffer_units=3), 20, 17),
        (StockPolicy(buffer_units=25), 20, 0),  # never negative
        (StockPolicy(max_qty=5), 20, 5),
        (StockPolicy(max_qty=0), 20, 0),
        (StockPolicy(pool_pct=50), 20, 10),
        (StockPolicy(pool_pct=33), 20, 6),  # floored
        (StockPolicy(pool_pct=0), 20, 0),
        (StockPolicy(zero_at_or_below=20), 20, 0),
        (StockPolicy(zero_at_or_below=19), 20, 20),
        (StockPolicy(buffer_units=2, max_qty=7, pool_pct=50, zero_at_or_below=3), 20, 7),
        (StockPolicy(buffer_units=2, max_qty=7, pool_pct=50, zero_at_or_below=3), 10, 0),
        (StockPolicy(buffer_units=2, max_qty=7, pool_pct=50, zero_at_or_below=3), 12, 4),
    ],
)
def test_policy_shapes_ats(world: Engine, policy: StockPolicy, on_hand: int, expected: int) -> None:
    world.add_channel(Channel("pol", "shopify", "eu", "EUR", (WH1,), policy))
    world.move(mv("receive", A, WH1, on_hand, "seed"))
    assert world.ats(A, "pol") == {"pol": expected}
    assert world.verify() == []


def test_ats_counts_available_not_reserved_or_held(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "r"))
    world.move(mv("reserve", A, WH1, 3, "res"))
    world.move(mv("damage", A, WH1, 1, "d", reason="x"))
    world.move(mv("quarantine", A, WH1, 2, "q", reason="x"))
    world.move(mv("transfer_out", A, WH1, 1, "t", to_location=WH2))
    assert world.ats(A) == {AMZ: 3, EBAY: 0, SHOP: 3}


@pytest.mark.parametrize("bad", [StockPolicy(buffer_units=-1), StockPolicy(max_qty=-1), StockPolicy(pool_pct=101),
                                 StockPolicy(zero_at_or_below=-1)])  # fmt: skip
def test_bad_policy_is_rejected(world: Engine, bad: StockPolicy) -> None:
    before = dump(world.db)
    with pytest.raises(InvalidInput):
        world.add_channel(Channel("pol", "shopify", "eu", "EUR", (WH1,), bad))
    with pytest.raises(InvalidInput):
        world.update_channel(SHOP, policy=bad)
    assert dump(world.db) == before


def test_policy_change_recomputes_ats_in_the_same_transaction(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    world.move(mv("receive", B, WH2, 4, "b"))
    before = outbox_max(world.db)

    world.update_channel(SHOP, policy=StockPolicy(buffer_units=2, zero_at_or_below=2))

    assert world.ats(A)[SHOP] == 8
    assert world.ats(B)[SHOP] == 0  # 4 - 2 = 2, at or below 2 → 0
    assert world.ats(A)[AMZ] == 10  # other channels untouched
    events = events_since(world.db, before)
    assert events[0].type == "ChannelPolicyChanged"
    assert events[0].key == SHOP
    assert events[0].data["old"]["policy"]["buffer_units"] == 0
    assert events[0].data["new"]["policy"] == {"buffer_units": 2, "max_qty": None, "pool_pct": 100,
                                               "zero_at_or_below": 2}  # fmt: skip
    assert {e.type for e in events[1:]} == {"ChannelAvailabilityChanged"}
    assert ats_changes_in(events) == [
        (A, SHOP, 10, 8, "channel-policy-changed"),
        (B, SHOP, 4, 0, "channel-policy-changed"),
    ]
    assert world.recompute_ats() == 0
    assert world.verify() == []
    # later movements use the new policy at once
    r = world.move(mv("receive", B, WH1, 1, "b2"))
    assert r.ats_changes == [AtsChange(B, AMZ, 0, 1), AtsChange(B, SHOP, 0, 3)]


def test_unchanged_update_writes_nothing(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    before = dump(world.db)
    same = world.update_channel(SHOP, policy=StockPolicy(), locations=[WH1, WH2])
    assert same == world.config().channels[SHOP]
    assert dump(world.db) == before


def test_channel_location_change(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    world.move(mv("receive", A, WH2, 3, "b"))
    world.move(mv("receive", A, STORE, 5, "c"))
    assert world.ats(A)[SHOP] == 13
    before = outbox_max(world.db)

    updated = world.update_channel(SHOP, locations=[STORE, WH2])

    assert updated.locations == (STORE, WH2)
    assert world.config().channels[SHOP].locations == (STORE, WH2)
    assert world.ats(A)[SHOP] == 8
    events = events_since(world.db, before)
    assert [e.type for e in events] == ["ChannelPolicyChanged", "ChannelAvailabilityChanged"]
    assert ats_changes_in(events) == [(A, SHOP, 13, 8, "channel-policy-changed")]
    # movements at the old location no longer reach the channel; the new one does
    assert world.move(mv("receive", A, WH1, 1, "d")).ats_changes == [AtsChange(A, AMZ, 10, 11)]
    assert world.move(mv("receive", A, STORE, 1, "e")).ats_changes == [AtsChange(A, SHOP, 8, 9)]
    assert world.verify() == []


def test_update_unknown_channel_or_location(world: Engine) -> None:
    before = dump(world.db)
    with pytest.raises(NotFound, match="nope"):
        world.update_channel("nope", policy=StockPolicy(buffer_units=1))
    with pytest.raises(NotFound, match="WH-XX"):
        world.update_channel(SHOP, locations=["WH-XX"])
    with pytest.raises(InvalidInput):
        world.update_channel(SHOP, locations=[WH1, WH1])
    assert dump(world.db) == before


def test_new_channel_starts_with_ats_of_existing_stock(world: Engine) -> None:
    world.move(mv("receive", A, WH2, 6, "a"))
    before = outbox_max(world.db)
    world.add_channel(Channel("cdiscount-fr", "cdiscount", "eu", "EUR", (WH2,), StockPolicy(buffer_units=1)))
    assert world.ats(A, "cdiscount-fr") == {"cdiscount-fr": 5}
    events = events_since(world.db, before)
    assert [e.type for e in events] == ["ChannelAdded", "ChannelAvailabilityChanged"]
    assert ats_changes_in(events) == [(A, "cdiscount-fr", 0, 5, "channel-added")]


def test_incremental_ats_equals_full_recompute_after_random_movements(world: Engine) -> None:
    world.update_channel(EBAY, policy=StockPolicy(buffer_units=1, pool_pct=80, max_qty=9, zero_at_or_below=1))
    rng = random.Random(7)
    locs = [WH1, WH2, STORE, FBA]
    for i in range(120):
        sku, loc = rng.choice(SKUS), rng.choice(locs)
        kind = rng.choice(["receive", "reserve", "release", "ship", "adjust", "damage"])
        qty = rng.randint(1, 6)
        extra = {"reason": "r"} if kind in ("adjust", "damage") else {}
        with contextlib.suppress(InsufficientStock):  # an impossible move is refused; that is fine here
            world.move(mv(kind, sku, loc, qty, f"k{i}", **extra))
    snapshot = ats_snapshot(world)
    assert any(snapshot.values())
    assert world.recompute_ats() == 0
    assert ats_snapshot(world) == snapshot
    assert world.verify() == []


def test_recompute_repairs_drift(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "a"))
    world.move(mv("receive", A, WH2, 2, "b"))
    # balances changed behind the engine's back (as after a restore): stored ATS no longer follows them
    bal = t.balances
    with world.db.engine.begin() as conn:
        conn.execute(sa.update(bal).where(bal.c.sku_id == A, bal.c.location_id == WH2).values(on_hand=6))
    drift = {(m.what, m.sku, m.where) for m in world.verify() if m.what == "ats"}
    assert drift == {("ats", A, SHOP), ("ats", A, EBAY)}
    before = outbox_max(world.db)
    assert world.recompute_ats(AMZ) == 0  # amazon-de does not draw on WH2
    assert world.recompute_ats(EBAY) == 1
    assert world.recompute_ats() == 1
    assert world.ats(A) == {AMZ: 10, EBAY: 6, SHOP: 16}
    assert sorted(ats_changes_in(events_since(world.db, before))) == [
        (A, EBAY, 2, 6, "recompute"),
        (A, SHOP, 12, 16, "recompute"),
    ]
    assert [m.what for m in world.verify()] == ["balance"]  # the ledger still disagrees, and says so
    with pytest.raises(NotFound):
        world.recompute_ats("nope")


def test_ats_of_unknown_sku_or_channel(world: Engine) -> None:
    with pytest.raises(NotFound, match="SKU"):
        world.ats("SKU-404")
    with pytest.raises(NotFound, match="channel"):
        world.ats(A, "nope")
    with pytest.raises(NotFound, match="SKU"):
        world.ats("SKU-404", SHOP)
    assert world.ats(B, EBAY) == {EBAY: 0}
