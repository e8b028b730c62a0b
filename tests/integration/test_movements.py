"""Every movement kind on every backend: buckets, ledger legs, outbox events and ATS changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from accord.app.engine import AtsChange, Engine
from accord.domain.errors import AlreadyExists, InsufficientStock, InvalidInput, NotFound
from accord.domain.ledger import MOVEMENT_EVENTS, Movement, MovementKind

from .helpers import AMZ, EBAY, SHOP, WH1, WH2, A, B, ats_changes_in, buckets, events_since, legs, mv, outbox_max

Deltas = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Case:
    movement: Movement
    event: str  # the kind's past-tense name (MOVEMENT_EVENTS: re-routing causes, events written before 0013)
    legs: list[tuple[str, Deltas]]
    after: dict[str, Deltas]  # location -> buckets after (on_hand, committed, in_transit, damaged, quarantine)
    ats: list[tuple[str, int, int]]  # (channel, old, new), sorted by channel
    setup: list[Movement] = field(default_factory=list)


def _case_id(case: Case) -> str:
    m = case.movement
    return f"{m.kind.value}-{m.key}"


# every case starts from 10 units of SKU-A received at WH1 (ATS shop-eu = amazon-de = 10, ebay-fr = 0)
CASES = [
    Case(mv("receive", A, WH1, 5, "rcv"), "StockReceived", [(WH1, (5, 0, 0, 0, 0))], {WH1: (15, 0, 0, 0, 0)},
         [(AMZ, 10, 15), (SHOP, 10, 15)]),
    Case(mv("adjust", A, WH1, 3, "adj-up", reason="found"), "StockAdjusted", [(WH1, (3, 0, 0, 0, 0))],
         {WH1: (13, 0, 0, 0, 0)}, [(AMZ, 10, 13), (SHOP, 10, 13)]),
    Case(mv("adjust", A, WH1, -4, "adj-down", reason="lost"), "StockAdjusted", [(WH1, (-4, 0, 0, 0, 0))],
         {WH1: (6, 0, 0, 0, 0)}, [(AMZ, 10, 6), (SHOP, 10, 6)]),
    Case(mv("count", A, WH1, 7, "count-down", reason="cycle"), "StockCounted", [(WH1, (-3, 0, 0, 0, 0))],
         {WH1: (7, 0, 0, 0, 0)}, [(AMZ, 10, 7), (SHOP, 10, 7)]),
    Case(mv("count", A, WH1, 12, "count-up", reason="cycle"), "StockCounted", [(WH1, (2, 0, 0, 0, 0))],
         {WH1: (12, 0, 0, 0, 0)}, [(AMZ, 10, 12), (SHOP, 10, 12)]),
    Case(mv("reserve", A, WH1, 4, "res", ref="order-1"), "StockReserved", [(WH1, (0, 4, 0, 0, 0))],
         {WH1: (10, 4, 0, 0, 0)}, [(AMZ, 10, 6), (SHOP, 10, 6)]),
    Case(mv("release", A, WH1, 3, "rel"), "StockReleased", [(WH1, (0, -3, 0, 0, 0))], {WH1: (10, 1, 0, 0, 0)},
         [(AMZ, 6, 9), (SHOP, 6, 9)], setup=[mv("reserve", A, WH1, 4, "pre-res")]),
    # shipping reserved units does not change what is available: no ATS change
    Case(mv("ship", A, WH1, 3, "shp"), "StockShipped", [(WH1, (-3, -3, 0, 0, 0))], {WH1: (7, 1, 0, 0, 0)}, [],
         setup=[mv("reserve", A, WH1, 4, "pre-res")]),
    # units in transit count nowhere: ebay-fr (WH2 only) stays 0
    Case(mv("transfer_out", A, WH1, 4, "xfer", to_location=WH2), "TransferShipped",
         [(WH1, (-4, 0, 0, 0, 0)), (WH2, (0, 0, 4, 0, 0))], {WH1: (6, 0, 0, 0, 0), WH2: (0, 0, 4, 0, 0)},
         [(AMZ, 10, 6), (SHOP, 10, 6)]),
    Case(mv("damage", A, WH1, 2, "dmg", reason="forklift"), "StockMarkedDamaged", [(WH1, (-2, 0, 0, 2, 0))],
         {WH1: (8, 0, 0, 2, 0)}, [(AMZ, 10, 8), (SHOP, 10, 8)]),
    Case(mv("quarantine", A, WH1, 3, "qua", reason="inspect"), "StockQuarantined", [(WH1, (-3, 0, 0, 0, 3))],
         {WH1: (7, 0, 0, 0, 3)}, [(AMZ, 10, 7), (SHOP, 10, 7)]),
    Case(mv("unquarantine", A, WH1, 2, "unq"), "StockReleasedFromQuarantine", [(WH1, (2, 0, 0, 0, -2))],
         {WH1: (9, 0, 0, 0, 1)}, [(AMZ, 7, 9), (SHOP, 7, 9)],
         setup=[mv("quarantine", A, WH1, 3, "pre-qua", reason="inspect")]),
    # scrap defaults to the damaged bucket, which is not sellable: no ATS change
    Case(mv("scrap", A, WH1, 1, "scr-dmg"), "StockScrapped", [(WH1, (0, 0, 0, -1, 0))], {WH1: (8, 0, 0, 1, 0)}, [],
         setup=[mv("damage", A, WH1, 2, "pre-dmg", reason="wet")]),
    Case(mv("scrap", A, WH1, 2, "scr-dmg2", source_bucket="damaged"), "StockScrapped", [(WH1, (0, 0, 0, -2, 0))],
         {WH1: (8, 0, 0, 0, 0)}, [], setup=[mv("damage", A, WH1, 2, "pre-dmg", reason="wet")]),
    Case(mv("scrap", A, WH1, 2, "scr-qua", source_bucket="quarantine", reason="failed"), "StockScrapped",
         [(WH1, (0, 0, 0, 0, -2))], {WH1: (7, 0, 0, 0, 1)}, [],
         setup=[mv("quarantine", A, WH1, 3, "pre-qua", reason="inspect")]),
    Case(mv("scrap", A, WH1, 2, "scr-oh", source_bucket="on_hand", reason="expired"), "StockScrapped",
         [(WH1, (-2, 0, 0, 0, 0))], {WH1: (8, 0, 0, 0, 0)}, [(AMZ, 10, 8), (SHOP, 10, 8)]),
]  # fmt: skip


def _expected_record(m: Movement) -> dict[str, Any]:
    record: dict[str, Any] = {**m.payload(), "key": m.key}
    if m.kind is MovementKind.TRANSFER_OUT:
        record["transfer_id"] = m.key
    return record


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_movement_kind(world: Engine, case: Case) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    for m in case.setup:
        world.move(m)
    before = outbox_max(world.db)
    m = case.movement
    assert MOVEMENT_EVENTS[m.kind] == case.event

    result = world.move(m)

    # result
    assert result.replayed is False
    assert (result.kind, result.sku, result.location, result.qty, result.key) == (m.kind.value, A, WH1, m.qty, m.key)
    assert {loc: b.as_tuple() for loc, b in result.balances.items()} == case.after
    assert result.ats_changes == [AtsChange(A, ch, old, new) for ch, old, new in case.ats]
    # stored balances and ledger legs
    for loc, expected in case.after.items():
        assert buckets(world, A, loc) == expected
    assert legs(world.db, m.key) == case.legs
    # outbox: one MovementsRecorded event (the movement, the balances after), then one availability event
    events = events_since(world.db, before)
    assert events[0].type == "MovementsRecorded"
    assert [e.type for e in events[1:]] == ["ChannelAvailabilityChanged"] * bool(case.ats)
    moved = events[0]
    assert moved.key == A
    assert moved.data == {
        "movements": [_expected_record(m)],
        "balances": [[A, loc, *v] for loc, v in case.after.items()],
    }
    assert ats_changes_in(events) == [(A, ch, old, new, m.kind.value) for ch, old, new in case.ats]
    # stored ATS follows, and a full recompute agrees with the incremental one
    ats = world.ats(A)
    for ch, _, new in case.ats:
        assert ats[ch] == new
    assert world.recompute_ats() == 0
    assert world.verify() == []


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_movement_kind_in_a_batch(world: Engine, case: Case) -> None:
    """The batch path (more than one movement) writes what the single-movement path writes."""
    world.move(mv("receive", A, WH1, 10, "seed"))
    for m in case.setup:
        world.move(m)
    before = outbox_max(world.db)
    m = case.movement
    other = mv("receive", B, WH2, 1, "other")

    results = world.move_batch([m, other])

    assert [r.key for r in results] == [m.key, other.key]
    assert {loc: b.as_tuple() for loc, b in results[0].balances.items()} == case.after
    assert results[0].ats_changes == [AtsChange(A, ch, old, new) for ch, old, new in case.ats]
    for loc, expected in case.after.items():
        assert buckets(world, A, loc) == expected
    assert legs(world.db, m.key) == case.legs
    events = events_since(world.db, before)
    assert events[0].type == "MovementsRecorded" and events[0].key == "batch"
    assert events[0].data == {
        "movements": [_expected_record(m), _expected_record(other)],
        "balances": [*([A, loc, *v] for loc, v in case.after.items()), [B, WH2, 1, 0, 0, 0, 0]],
    }
    assert [c for c in ats_changes_in(events) if c[0] == A] == [(A, ch, old, new, "batch") for ch, old, new in case.ats]
    assert world.recompute_ats() == 0
    assert world.verify() == []


def test_transfer_with_partial_receipts(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    out = world.move(mv("transfer_out", A, WH1, 6, "ship-1", to_location=WH2, transfer_id="T-1"))
    assert out.transfer_id == "T-1"
    assert world.transfer("T-1")["qty_shipped"] == 6
    assert world.ats(A) == {AMZ: 4, EBAY: 0, SHOP: 4}

    before = outbox_max(world.db)
    first = world.move(mv("transfer_in", A, WH2, 2, "in-1", transfer_id="T-1"))
    assert first.transfer_id == "T-1"
    assert buckets(world, A, WH2) == (2, 0, 4, 0, 0)
    assert legs(world.db, "in-1") == [(WH2, (2, 0, -2, 0, 0))]
    assert first.ats_changes == [AtsChange(A, EBAY, 0, 2), AtsChange(A, SHOP, 4, 6)]
    events = events_since(world.db, before)
    assert events[0].type == "MovementsRecorded"
    assert events[0].data["movements"] == [
        {"key": "in-1", "kind": "transfer_in", "sku": A, "location": WH2, "qty": 2, "transfer_id": "T-1"}
    ]
    tr = world.transfer("T-1")
    assert (tr["qty_shipped"], tr["qty_received"]) == (6, 2)
    assert [x["id"] for x in world.transfers(open_only=True)] == ["T-1"]

    world.move(mv("transfer_in", A, WH2, 4, "in-2", transfer_id="T-1"))
    assert buckets(world, A, WH2) == (6, 0, 0, 0, 0)
    assert buckets(world, A, WH1) == (4, 0, 0, 0, 0)
    assert world.transfer("T-1")["qty_received"] == 6
    assert world.transfers(open_only=True) == []
    assert world.ats(A) == {AMZ: 4, EBAY: 6, SHOP: 10}

    with pytest.raises(InsufficientStock, match="in transit"):
        world.move(mv("transfer_in", A, WH2, 1, "in-3", transfer_id="T-1"))
    assert world.verify() == []


def test_transfer_id_defaults_to_the_key(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "seed"))
    world.move(mv("transfer_out", A, WH1, 5, "move-5", to_location=WH2))
    assert world.transfer("move-5")["to_location"] == WH2
    world.move(mv("transfer_in", A, WH2, 5, "in", transfer_id="move-5"))
    assert buckets(world, A, WH2) == (5, 0, 0, 0, 0)


def test_two_transfers_to_the_same_place_are_tracked_apart(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    world.move(mv("transfer_out", A, WH1, 3, "t-a", to_location=WH2))
    world.move(mv("transfer_out", A, WH1, 4, "t-b", to_location=WH2))
    assert buckets(world, A, WH2) == (0, 0, 7, 0, 0)
    # receiving more than one transfer carries is refused even though 7 are in transit at WH2
    with pytest.raises(InsufficientStock):
        world.move(mv("transfer_in", A, WH2, 4, "in-a", transfer_id="t-a"))
    world.move(mv("transfer_in", A, WH2, 3, "in-a", transfer_id="t-a"))
    assert buckets(world, A, WH2) == (3, 0, 4, 0, 0)
    assert [x["id"] for x in world.transfers(open_only=True)] == ["t-b"]
    assert world.verify() == []


def test_transfer_in_must_match_the_transfer(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "seed"))
    world.move(mv("receive", B, WH1, 5, "seed-b"))
    world.move(mv("transfer_out", A, WH1, 5, "T-9", to_location=WH2))
    with pytest.raises(InvalidInput, match="T-9"):
        world.move(mv("transfer_in", B, WH2, 1, "wrong-sku", transfer_id="T-9"))
    with pytest.raises(InvalidInput, match="T-9"):
        world.move(mv("transfer_in", A, WH1, 1, "wrong-place", transfer_id="T-9"))
    with pytest.raises(NotFound, match="transfer"):
        world.move(mv("transfer_in", A, WH2, 1, "nope", transfer_id="T-404"))
    with pytest.raises(NotFound, match="transfer"):
        world.transfer("T-404")
    assert buckets(world, A, WH2) == (0, 0, 5, 0, 0)


def test_transfer_id_cannot_be_reused(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    world.move(mv("transfer_out", A, WH1, 1, "k1", to_location=WH2, transfer_id="T"))
    with pytest.raises(AlreadyExists, match="already exists"):
        world.move(mv("transfer_out", A, WH1, 1, "k2", to_location=WH2, transfer_id="T"))
    assert buckets(world, A, WH1) == (9, 0, 0, 0, 0)


def test_count_below_committed_is_refused(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    world.move(mv("reserve", A, WH1, 6, "r"))
    with pytest.raises(InsufficientStock, match="committed"):
        world.move(mv("count", A, WH1, 5, "c", reason="cycle"))
    world.move(mv("count", A, WH1, 6, "c2", reason="cycle"))
    assert buckets(world, A, WH1) == (6, 6, 0, 0, 0)
    assert world.ats(A)[SHOP] == 0


def test_count_to_zero_of_an_empty_location_writes_a_zero_leg(world: Engine) -> None:
    world.move(mv("count", A, WH2, 0, "c0", reason="cycle"))
    assert legs(world.db, "c0") == [(WH2, (0, 0, 0, 0, 0))]
    assert buckets(world, A, WH2) == (0, 0, 0, 0, 0)
    assert world.verify() == []


def test_batch_applies_in_order_in_one_transaction(world: Engine) -> None:
    before = outbox_max(world.db)
    results = world.move_batch(
        [
            mv("receive", A, WH1, 5, "b1"),
            mv("reserve", A, WH1, 5, "b2"),  # needs b1 applied first
            mv("receive", B, WH2, 2, "b3"),
        ]
    )
    assert [r.key for r in results] == ["b1", "b2", "b3"]
    assert buckets(world, A, WH1) == (5, 5, 0, 0, 0)
    recorded = events_since(world.db, before)[0]
    assert (recorded.type, recorded.key) == ("MovementsRecorded", "batch")  # one event for the transaction
    assert [(x["kind"], x["key"]) for x in recorded.data["movements"]] == [
        ("receive", "b1"),
        ("reserve", "b2"),
        ("receive", "b3"),
    ]
    assert recorded.data["balances"] == [[A, WH1, 5, 5, 0, 0, 0], [B, WH2, 2, 0, 0, 0, 0]]
    # ATS is computed once for the batch: A ends at 0 (never announced), B rises on ebay and shop
    assert ats_changes_in(events_since(world.db, before)) == [(B, EBAY, 0, 2, "batch"), (B, SHOP, 0, 2, "batch")]
    assert world.move_batch([]) == []


def test_transfer_shipped_and_received_in_one_batch(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "seed"))
    results = world.move_batch(
        [
            mv("transfer_out", A, WH1, 5, "out", to_location=WH2, transfer_id="T-B"),
            mv("transfer_in", A, WH2, 3, "in", transfer_id="T-B"),
        ]
    )
    assert [r.transfer_id for r in results] == ["T-B", "T-B"]
    assert buckets(world, A, WH1) == (5, 0, 0, 0, 0)
    assert buckets(world, A, WH2) == (3, 0, 2, 0, 0)
    tr = world.transfer("T-B")
    assert (tr["qty_shipped"], tr["qty_received"]) == (5, 3)
    assert world.verify() == []
