"""Invariant 3: the same idempotency key never moves stock twice; with a different payload it is an error."""

from __future__ import annotations

import pytest

from accord.app.engine import Engine
from accord.domain.errors import IdempotencyConflict

from .helpers import WH1, WH2, A, B, buckets, dump, ledger_rows, mv


def test_same_key_twice_moves_once(world: Engine) -> None:
    first = world.move(mv("receive", A, WH1, 5, "po-1", ref="PO-1"))
    after_first = dump(world.db)
    again = world.move(mv("receive", A, WH1, 5, "po-1", ref="PO-1"))
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.key, again.kind, again.sku, again.location, again.qty) == ("po-1", "receive", A, WH1, 5)
    assert again.ats_changes == []
    assert buckets(world, A, WH1) == (5, 0, 0, 0, 0)
    assert dump(world.db) == after_first  # no ledger row, no event, no balance change


def test_replay_answers_even_when_the_movement_would_no_longer_fit(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 5, "in"))
    world.move(mv("reserve", A, WH1, 5, "order-7"))
    world.move(mv("ship", A, WH1, 5, "ship-7"))
    # a retried reservation is answered from the ledger, not re-checked against today's stock
    assert world.move(mv("reserve", A, WH1, 5, "order-7")).replayed is True
    assert buckets(world, A, WH1) == (0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "other",
    [
        mv("receive", A, WH1, 6, "po-1", ref="PO-1"),  # quantity
        mv("receive", B, WH1, 5, "po-1", ref="PO-1"),  # SKU
        mv("receive", A, WH2, 5, "po-1", ref="PO-1"),  # location
        mv("receive", A, WH1, 5, "po-1", ref="PO-2"),  # reference
        mv("receive", A, WH1, 5, "po-1"),  # reference dropped
        mv("reserve", A, WH1, 5, "po-1", ref="PO-1"),  # kind
        mv("adjust", A, WH1, 5, "po-1", reason="x", ref="PO-1"),  # kind and reason
    ],
    ids=["qty", "sku", "location", "ref", "no-ref", "kind", "reason"],
)
def test_same_key_other_payload_is_a_conflict(world: Engine, other: object) -> None:
    world.move(mv("receive", A, WH1, 5, "po-1", ref="PO-1"))
    before = dump(world.db)
    with pytest.raises(IdempotencyConflict, match="po-1"):
        world.move(other)  # type: ignore[arg-type]
    assert dump(world.db) == before


def test_transfer_replay_does_not_open_a_second_transfer(world: Engine) -> None:
    world.move(mv("receive", A, WH1, 10, "in"))
    world.move(mv("transfer_out", A, WH1, 4, "t-1", to_location=WH2))
    assert world.move(mv("transfer_out", A, WH1, 4, "t-1", to_location=WH2)).replayed is True
    assert len(world.transfers()) == 1
    world.move(mv("transfer_in", A, WH2, 4, "t-1-in", transfer_id="t-1"))
    assert world.move(mv("transfer_in", A, WH2, 4, "t-1-in", transfer_id="t-1")).replayed is True
    assert buckets(world, A, WH2) == (4, 0, 0, 0, 0)
    assert world.verify() == []


def test_duplicate_key_inside_one_batch_applies_once(world: Engine) -> None:
    results = world.move_batch(
        [
            mv("receive", A, WH1, 3, "dup"),
            mv("receive", B, WH1, 1, "other"),
            mv("receive", A, WH1, 3, "dup"),
        ]
    )
    assert [r.replayed for r in results] == [False, False, True]
    assert buckets(world, A, WH1) == (3, 0, 0, 0, 0)
    assert len(ledger_rows(world.db, "dup")) == 1
    # the whole batch again: everything replays, nothing moves
    before = dump(world.db)
    again = world.move_batch([mv("receive", A, WH1, 3, "dup"), mv("receive", B, WH1, 1, "other")])
    assert [r.replayed for r in again] == [True, True]
    assert dump(world.db) == before


def test_conflicting_duplicate_inside_one_batch_applies_nothing(world: Engine) -> None:
    before = dump(world.db)
    with pytest.raises(IdempotencyConflict, match="movement #2"):
        world.move_batch(
            [
                mv("receive", A, WH1, 3, "dup"),
                mv("receive", B, WH1, 1, "fine"),
                mv("receive", A, WH1, 4, "dup"),
            ]
        )
    assert dump(world.db) == before


def test_keys_are_shared_across_engines(world: Engine) -> None:
    from .helpers import new_engine

    world.move(mv("receive", A, WH1, 2, "shared"))
    other = new_engine(world.db.url)
    try:
        assert other.move(mv("receive", A, WH1, 2, "shared")).replayed is True
        with pytest.raises(IdempotencyConflict):
            other.move(mv("receive", A, WH1, 3, "shared"))
    finally:
        other.db.dispose()
    assert buckets(world, A, WH1) == (2, 0, 0, 0, 0)
