"""Pure ledger rules: validation, planning movements into legs, invariant checks, fingerprints."""

from __future__ import annotations

from typing import Any

import pytest

from accord.domain.errors import InsufficientStock, InvalidInput
from accord.domain.ledger import (
    BUCKETS,
    MOVEMENT_EVENTS,
    Balance,
    Leg,
    Movement,
    MovementKind,
    apply,
    plan,
    validate,
    violations,
)

K = MovementKind


def m(kind: MovementKind, qty: Any = 1, key: str = "k", **extra: Any) -> Movement:
    return Movement(kind, "SKU-1", "WH-1", qty, key, **extra)


# on_hand 10, committed 4, in_transit 3, damaged 2, quarantine 1 → available 6
FULL = Balance(10, 4, 3, 2, 1)


def test_available_is_on_hand_minus_committed() -> None:
    assert FULL.available == 6
    assert FULL.as_tuple() == (10, 4, 3, 2, 1)
    copy = FULL.copy()
    apply(copy, (1, 1, 1, 1, 1))
    assert copy.as_tuple() == (11, 5, 4, 3, 2)
    assert FULL.as_tuple() == (10, 4, 3, 2, 1)  # copy is independent


def test_every_kind_has_a_past_tense_event() -> None:
    assert set(MOVEMENT_EVENTS) == set(MovementKind)
    for name in MOVEMENT_EVENTS.values():
        assert name[0].isupper()
        assert name.endswith("ed") or name.endswith("edFromQuarantine"), name
    assert len(set(MOVEMENT_EVENTS.values())) == len(MOVEMENT_EVENTS)


@pytest.mark.parametrize(
    ("movement", "legs"),
    [
        (m(K.RECEIVE, 5), [Leg("WH-1", (5, 0, 0, 0, 0))]),
        (m(K.ADJUST, 3, reason="r"), [Leg("WH-1", (3, 0, 0, 0, 0))]),
        (m(K.ADJUST, -6, reason="r"), [Leg("WH-1", (-6, 0, 0, 0, 0))]),
        (m(K.COUNT, 4, reason="r"), [Leg("WH-1", (-6, 0, 0, 0, 0))]),
        (m(K.COUNT, 15, reason="r"), [Leg("WH-1", (5, 0, 0, 0, 0))]),
        (m(K.RESERVE, 6), [Leg("WH-1", (0, 6, 0, 0, 0))]),
        (m(K.RELEASE, 4), [Leg("WH-1", (0, -4, 0, 0, 0))]),
        (m(K.SHIP, 4), [Leg("WH-1", (-4, -4, 0, 0, 0))]),
        (m(K.TRANSFER_OUT, 6, to_location="WH-2"), [Leg("WH-1", (-6, 0, 0, 0, 0)), Leg("WH-2", (0, 0, 6, 0, 0))]),
        (m(K.TRANSFER_IN, 3, transfer_id="T"), [Leg("WH-1", (3, 0, -3, 0, 0))]),
        (m(K.DAMAGE, 6), [Leg("WH-1", (-6, 0, 0, 6, 0))]),
        (m(K.QUARANTINE, 6), [Leg("WH-1", (-6, 0, 0, 0, 6))]),
        (m(K.UNQUARANTINE, 1), [Leg("WH-1", (1, 0, 0, 0, -1))]),
        (m(K.SCRAP, 2), [Leg("WH-1", (0, 0, 0, -2, 0))]),  # default source: damaged
        (m(K.SCRAP, 2, source_bucket="damaged"), [Leg("WH-1", (0, 0, 0, -2, 0))]),
        (m(K.SCRAP, 1, source_bucket="quarantine"), [Leg("WH-1", (0, 0, 0, 0, -1))]),
        (m(K.SCRAP, 6, source_bucket="on_hand"), [Leg("WH-1", (-6, 0, 0, 0, 0))]),
    ],
    ids=lambda v: v.kind.value if isinstance(v, Movement) else "",
)
def test_plan_legs_at_the_limit(movement: Movement, legs: list[Leg]) -> None:
    validate(movement)
    assert plan(movement, FULL.copy()) == legs
    # applying the legs never breaks invariant 2 (the source leg is at the source location)
    after = FULL.copy()
    apply(after, legs[0].deltas)
    assert violations(after) == []


@pytest.mark.parametrize(
    ("movement", "text"),
    [
        (m(K.ADJUST, -7, reason="r"), "only 6 available"),
        (m(K.COUNT, 3, reason="r"), "below the 4 committed"),
        (m(K.RESERVE, 7), "only 6 available"),
        (m(K.RELEASE, 5), "only 4 committed"),
        (m(K.SHIP, 5), "only 4 committed"),
        (m(K.TRANSFER_OUT, 7, to_location="WH-2"), "only 6 available"),
        (m(K.TRANSFER_IN, 4, transfer_id="T"), "only 3 in transit"),
        (m(K.DAMAGE, 7), "only 6 available"),
        (m(K.QUARANTINE, 7), "only 6 available"),
        (m(K.UNQUARANTINE, 2), "only 1 in quarantine"),
        (m(K.SCRAP, 3), "only 2 damaged"),
        (m(K.SCRAP, 2, source_bucket="quarantine"), "only 1 in quarantine"),
        (m(K.SCRAP, 7, source_bucket="on_hand"), "only 6 available"),
    ],
    ids=lambda v: v.kind.value if isinstance(v, Movement) else "",
)
def test_plan_refuses_more_than_a_bucket_holds(movement: Movement, text: str) -> None:
    validate(movement)
    with pytest.raises(InsufficientStock) as info:
        plan(movement, FULL.copy())
    assert text in str(info.value)
    assert "SKU-1" in str(info.value) and "WH-1" in str(info.value)


@pytest.mark.parametrize(
    ("movement", "text"),
    [
        (m(K.RECEIVE, 0), "positive"),
        (m(K.RECEIVE, -1), "positive"),
        (m(K.SHIP, 0), "positive"),
        (m(K.RECEIVE, 1.0), "whole number"),
        (m(K.RECEIVE, "1"), "whole number"),
        (m(K.RECEIVE, True), "whole number"),
        (m(K.RECEIVE, False), "whole number"),
        (m(K.RECEIVE, None), "whole number"),
        (m(K.ADJUST, 0, reason="r"), "must not be zero"),
        (m(K.ADJUST, 1), "needs a reason"),
        (m(K.COUNT, -1, reason="r"), "zero or more"),
        (m(K.COUNT, 1), "needs a reason"),
        (m(K.RECEIVE, 1, key=""), "key"),
        (m(K.RECEIVE, 1, key="x" * 201), "key"),
        (m(K.TRANSFER_OUT, 1), "destination"),
        (m(K.TRANSFER_OUT, 1, to_location="WH-1"), "same location"),
        (m(K.TRANSFER_IN, 1), "transfer id"),
        (m(K.SCRAP, 1, source_bucket="committed"), "scrap source"),
        (m(K.SCRAP, 1, source_bucket="in_transit"), "scrap source"),
    ],
)
def test_validate_rejects_malformed_movements(movement: Movement, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate(movement)
    assert text in str(info.value)


def test_validate_accepts_edge_values() -> None:
    validate(m(K.COUNT, 0, reason="empty shelf"))
    validate(m(K.ADJUST, -1, reason="lost"))
    validate(m(K.RECEIVE, 1, key="x" * 200))


def test_count_of_an_empty_balance() -> None:
    assert plan(m(K.COUNT, 0, reason="r"), Balance()) == [Leg("WH-1", (0, 0, 0, 0, 0))]
    assert plan(m(K.COUNT, 7, reason="r"), Balance()) == [Leg("WH-1", (7, 0, 0, 0, 0))]


def test_violations() -> None:
    assert violations(Balance(1, 1, 0, 0, 0)) == []
    assert violations(Balance(1, 2, 0, 0, 0)) == ["committed 2 exceeds on_hand 1"]
    assert violations(Balance(2, 0, -1, -2, 0)) == ["in_transit is negative (-1)", "damaged is negative (-2)"]
    assert violations(Balance(-1, 0, 0, 0, 0)) == ["on_hand is negative (-1)", "committed 0 exceeds on_hand -1"]


def test_payload_and_fingerprint() -> None:
    base = m(K.TRANSFER_OUT, 3, key="k1", to_location="WH-2", ref="PO-1")
    assert base.payload() == {
        "kind": "transfer_out",
        "sku": "SKU-1",
        "location": "WH-1",
        "qty": 3,
        "to_location": "WH-2",
        "ref": "PO-1",
    }
    same_other_key = m(K.TRANSFER_OUT, 3, key="k2", to_location="WH-2", ref="PO-1")
    assert base.fingerprint() == same_other_key.fingerprint()
    variants = [
        m(K.TRANSFER_OUT, 4, to_location="WH-2", ref="PO-1"),
        m(K.TRANSFER_OUT, 3, to_location="WH-3", ref="PO-1"),
        m(K.TRANSFER_OUT, 3, to_location="WH-2", ref="PO-2"),
        m(K.TRANSFER_OUT, 3, to_location="WH-2"),
        m(K.TRANSFER_OUT, 3, to_location="WH-2", ref="PO-1", reason="x"),
        m(K.TRANSFER_OUT, 3, to_location="WH-2", ref="PO-1", transfer_id="T"),
        m(K.RECEIVE, 3, ref="PO-1"),
        Movement(K.TRANSFER_OUT, "SKU-2", "WH-1", 3, "k1", to_location="WH-2", ref="PO-1"),
    ]
    prints = {v.fingerprint() for v in variants}
    assert base.fingerprint() not in prints
    assert len(prints) == len(variants)
    assert len(BUCKETS) == 5
