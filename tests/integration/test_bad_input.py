"""Bad input is refused with a precise error and NOTHING is written (balances, ledger, outbox, transfers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accord.app.engine import MAX_BATCH, Engine
from accord.domain.errors import AccordError, InsufficientStock, InvalidInput, NotFound
from accord.domain.ledger import Movement

from .helpers import STORE, WH1, WH2, A, B, dump, mv


@pytest.fixture
def stocked(world: Engine) -> Iterator[Engine]:
    """WH1: A on_hand 10, committed 4, damaged 1, quarantine 1; transfer T-1 of 2 A to WH2 in transit."""
    world.move(mv("receive", A, WH1, 14, "s1"))
    world.move(mv("reserve", A, WH1, 4, "s2"))
    world.move(mv("damage", A, WH1, 1, "s3", reason="x"))
    world.move(mv("quarantine", A, WH1, 1, "s4", reason="x"))
    world.move(mv("transfer_out", A, WH1, 2, "T-1", to_location=WH2))
    snapshot = dump(world.db)
    yield world
    assert dump(world.db) == snapshot, "a refused movement wrote something"


BAD: list[tuple[str, Movement, type[AccordError], str]] = [
    ("unknown-sku", mv("receive", "SKU-404", WH1, 1, "k"), NotFound, "SKU-404"),
    ("unknown-location", mv("receive", A, "WH-404", 1, "k"), NotFound, "WH-404"),
    ("unknown-destination", mv("transfer_out", A, WH1, 1, "k", to_location="WH-404"), NotFound, "WH-404"),
    ("unknown-transfer", mv("transfer_in", A, WH2, 1, "k", transfer_id="T-404"), NotFound, "T-404"),
    ("qty-zero", mv("receive", A, WH1, 0, "k"), InvalidInput, "positive"),
    ("qty-negative", mv("reserve", A, WH1, -1, "k"), InvalidInput, "positive"),
    ("qty-float", mv("receive", A, WH1, 1.5, "k"), InvalidInput, "whole number"),
    ("qty-str", mv("receive", A, WH1, "3", "k"), InvalidInput, "whole number"),
    ("qty-bool", mv("receive", A, WH1, True, "k"), InvalidInput, "whole number"),
    ("qty-none", mv("receive", A, WH1, None, "k"), InvalidInput, "whole number"),
    ("adjust-zero", mv("adjust", A, WH1, 0, "k", reason="x"), InvalidInput, "zero"),
    ("adjust-no-reason", mv("adjust", A, WH1, 1, "k"), InvalidInput, "reason"),
    ("count-negative", mv("count", A, WH1, -1, "k", reason="x"), InvalidInput, "zero or more"),
    ("count-no-reason", mv("count", A, WH1, 3, "k"), InvalidInput, "reason"),
    ("empty-key", mv("receive", A, WH1, 1, ""), InvalidInput, "key"),
    ("long-key", mv("receive", A, WH1, 1, "k" * 201), InvalidInput, "key"),
    ("transfer-same-place", mv("transfer_out", A, WH1, 1, "k", to_location=WH1), InvalidInput, "same"),
    ("transfer-no-destination", mv("transfer_out", A, WH1, 1, "k"), InvalidInput, "destination"),
    ("transfer-in-no-id", mv("transfer_in", A, WH2, 1, "k"), InvalidInput, "transfer id"),
    ("scrap-bad-source", mv("scrap", A, WH1, 1, "k", source_bucket="committed"), InvalidInput, "scrap source"),
    # more than a bucket holds (available = 10 - 4 = 6)
    ("reserve-over-available", mv("reserve", A, WH1, 7, "k"), InsufficientStock, "only 6 available"),
    ("ship-over-committed", mv("ship", A, WH1, 5, "k"), InsufficientStock, "only 4 committed"),
    ("release-over-committed", mv("release", A, WH1, 5, "k"), InsufficientStock, "only 4 committed"),
    ("adjust-over-available", mv("adjust", A, WH1, -7, "k", reason="x"), InsufficientStock, "only 6"),
    ("damage-over-available", mv("damage", A, WH1, 7, "k", reason="x"), InsufficientStock, "only 6"),
    ("quarantine-over-available", mv("quarantine", A, WH1, 7, "k", reason="x"), InsufficientStock, "only 6"),
    ("transfer-over-available", mv("transfer_out", A, WH1, 7, "k", to_location=WH2), InsufficientStock, "only 6"),
    ("transfer-in-over-transit", mv("transfer_in", A, WH2, 3, "k", transfer_id="T-1"), InsufficientStock, "only 2"),
    ("unquarantine-over", mv("unquarantine", A, WH1, 2, "k"), InsufficientStock, "only 1"),
    ("scrap-over-damaged", mv("scrap", A, WH1, 2, "k"), InsufficientStock, "only 1 damaged"),
    ("scrap-over-quarantine", mv("scrap", A, WH1, 2, "k", source_bucket="quarantine"), InsufficientStock, "only 1"),
    ("scrap-over-on-hand", mv("scrap", A, WH1, 7, "k", source_bucket="on_hand"), InsufficientStock, "only 6"),
    ("count-below-committed", mv("count", A, WH1, 3, "k", reason="x"), InsufficientStock, "committed"),
    ("reserve-at-empty-location", mv("reserve", B, STORE, 1, "k"), InsufficientStock, "only 0"),
]


@pytest.mark.parametrize(("movement", "error", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_movement_writes_nothing(stocked: Engine, movement: Movement, error: type[AccordError], text: str) -> None:
    with pytest.raises(error) as info:
        stocked.move(movement)
    assert text in str(info.value)
    assert "\n" not in str(info.value)
    assert "movement #" not in str(info.value)  # a single movement is not "in a batch"


@pytest.mark.parametrize(("movement", "error", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_batch_with_one_bad_movement_applies_nothing(
    stocked: Engine, movement: Movement, error: type[AccordError], text: str
) -> None:
    good: list[Any] = [mv("receive", B, WH1, 1, "g1"), mv("receive", B, WH2, 5, "g2")]
    with pytest.raises(error) as info:
        stocked.move_batch([*good, movement, mv("receive", A, WH2, 1, "g3")])
    assert str(info.value).startswith("movement #2: ")
    assert text in str(info.value)


def test_batch_size_is_limited(world: Engine) -> None:
    before = dump(world.db)
    too_many = [mv("receive", A, WH1, 1, f"k{i}") for i in range(MAX_BATCH + 1)]
    with pytest.raises(InvalidInput, match="at most"):
        world.move_batch(too_many)
    assert dump(world.db) == before


def test_unknown_references_in_reads(world: Engine) -> None:
    with pytest.raises(NotFound, match="SKU-404"):
        world.balances("SKU-404")
    with pytest.raises(NotFound, match="WH-404"):
        world.balances(location="WH-404")
    assert world.balances(A) == []
