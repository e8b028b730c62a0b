"""Return (RMA) rules: policy window, over-returns, receiving, grading and the ledger movements they imply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.ledger import Balance, Movement, MovementKind, apply, plan, validate, violations
from accord.domain.returns import (
    Grade,
    Payer,
    RefundState,
    ReturnPolicy,
    ReturnReason,
    ReturnRejected,
    Rma,
    RmaStatus,
    create_rma,
    grade_movements,
    release_refurbished,
)

K = MovementKind
DELIVERED = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EU = ReturnPolicy("eu-withdrawal-14d", "EU", 14, Payer.SELLER, 0)
US = ReturnPolicy("us-30d-restock", "US", 30, Payer.BUYER, restocking_fee_pct=15, return_label_cost_minor=500)
POLICIES = {"EU": EU, "US": US}


def rma(region: str = "US", days: int = 5, requested: dict[str, int] | None = None, **kw: object) -> Rma:
    return create_rma(
        "R1",
        "O1",
        "amazon-us",
        region,
        POLICIES,
        delivered_at=DELIVERED,
        requested_at=DELIVERED + timedelta(days=days),
        requested=requested or {"A": 2, "B": 1},
        shipped={"A": 2, "B": 1},
        unit_price_minor={"A": 2000, "B": 1000},
        **kw,  # type: ignore[arg-type]
    )


def run(balance: Balance, moves: list[Movement]) -> Balance:
    """Apply a batch through the ledger's own rules, as the storage layer will."""
    b = balance.copy()
    for m in moves:
        validate(m)
        for leg in plan(m, b):
            apply(b, leg.deltas)
    assert violations(b) == []
    return b


def test_outside_the_window_is_rejected_naming_the_rule() -> None:
    with pytest.raises(ReturnRejected, match="rule 'eu-withdrawal-14d' \\(region EU\\): requested 15 days") as err:
        rma("EU", days=15)
    assert err.value.rule == "eu-withdrawal-14d"
    assert isinstance(err.value, InvalidInput)
    assert rma("EU", days=14).status is RmaStatus.REQUESTED  # the last day is inside


def test_policy_checks_and_unknown_region() -> None:
    with pytest.raises(NotFound, match="return policy for region 'APAC'"):
        rma("APAC")
    with pytest.raises(InvalidInput):
        ReturnPolicy("x", "EU", 0).check()
    with pytest.raises(InvalidInput):
        ReturnPolicy("x", "EU", 14, restocking_fee_pct=120).check()
    EU.check()


def test_returning_more_than_shipped_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="returning 3 of A but only 2 shipped"):
        rma(requested={"A": 3})
    with pytest.raises(InvalidInput, match="returning 1 of A but only 2 shipped \\(2 already returned\\)"):
        rma(requested={"A": 1}, already_returned={"A": 2})
    with pytest.raises(InvalidInput, match="C was never shipped"):
        rma(requested={"C": 1})
    with pytest.raises(InvalidInput, match="positive whole number"):
        rma(requested={"A": 0})
    with pytest.raises(InvalidInput, match="before the order was delivered"):
        rma(days=-1)


def test_grading_units_never_received_is_an_error() -> None:
    r = rma()
    with pytest.raises(InvalidInput, match="cannot grade 1 of A: only 0 received"):
        r.grade("A", 1, Grade.RESELLABLE)
    r.receive("A", 1, "WH-NJ")
    with pytest.raises(InvalidInput, match="cannot grade 2 of A: only 1 received"):
        r.grade("A", 2, Grade.RESELLABLE)
    with pytest.raises(InvalidInput, match="no line for SKU Z"):
        r.grade("Z", 1, Grade.SCRAP)
    with pytest.raises(InvalidInput, match="would exceed the 2 requested"):
        r.receive("A", 2, "WH-NJ")
    with pytest.raises(InvalidInput, match="being received at WH-NJ"):
        r.receive("A", 1, "DC-ATL")


def test_received_units_are_never_available_before_inspection() -> None:
    r = rma()
    moves = r.receive("A", 2, "WH-NJ")
    assert [m.kind for m in moves] == [K.RECEIVE, K.QUARANTINE]
    assert all(m.ref == "R1" for m in moves)
    assert len({m.key for m in moves}) == 2
    start = Balance(on_hand=5, committed=5)  # fully committed shelf
    after = run(start, moves)
    assert after.available == 0 and after.quarantine == 2 and after.on_hand == 5
    assert r.status is RmaStatus.RECEIVED


@pytest.mark.parametrize(
    ("grade", "kinds", "buckets"),
    [
        (Grade.RESELLABLE, [K.UNQUARANTINE], (2, 0, 0, 0, 0)),
        (Grade.REFURBISH, [], (0, 0, 0, 0, 2)),
        (Grade.DAMAGED, [K.UNQUARANTINE, K.DAMAGE], (0, 0, 0, 2, 0)),
        (Grade.SCRAP, [K.SCRAP], (0, 0, 0, 0, 0)),
    ],
)
def test_each_grade_implies_its_movements(grade: Grade, kinds: list[MovementKind], buckets: tuple[int, ...]) -> None:
    r = rma(requested={"A": 2})
    received = run(Balance(), r.receive("A", 2, "WH-NJ"))
    moves = r.grade("A", 2, grade)
    assert [m.kind for m in moves] == kinds
    assert all(m.location == "WH-NJ" and m.sku == "A" for m in moves)
    if grade is Grade.SCRAP:
        assert moves[0].source_bucket == "quarantine"
    assert run(received, moves).as_tuple() == buckets


def test_refurbished_units_wait_in_quarantine_until_released() -> None:
    r = rma(requested={"A": 2})
    b = run(Balance(), r.receive("A", 2, "WH-NJ"))
    b = run(b, r.grade("A", 2, Grade.REFURBISH))
    assert b.available == 0 and b.quarantine == 2
    b = run(b, release_refurbished(r, "A", 1))
    assert b.as_tuple() == (1, 0, 0, 0, 1)
    with pytest.raises(InvalidInput, match="1 graded refurbish"):
        release_refurbished(r, "A", 2)


def test_keys_are_unique_across_the_rma() -> None:
    r = rma()
    keys = [m.key for m in r.receive("A", 1, "WH-NJ")]
    keys += [m.key for m in r.receive("A", 1, "WH-NJ")]
    keys += [m.key for m in r.grade("A", 1, Grade.DAMAGED)]
    keys += [m.key for m in r.grade("A", 1, Grade.DAMAGED)]
    assert len(keys) == len(set(keys)) == 8


def test_status_and_refund_state_flow_buyer_fault() -> None:
    r = rma()  # US: buyer pays a 500 label, 15 % restocking fee, changed mind
    assert (r.status, r.refund_state) == (RmaStatus.REQUESTED, RefundState.NOT_DUE)
    r.receive("A", 2, "WH-NJ")
    r.grade("A", 2, Grade.RESELLABLE)
    assert r.status is RmaStatus.INSPECTED  # B not back yet
    with pytest.raises(InvalidInput, match="not due"):
        r.mark_refunded(0)
    r.receive("B", 1, "WH-NJ")
    r.grade("B", 1, Grade.DAMAGED)
    assert (r.status, r.refund_state) == (RmaStatus.GRADED, RefundState.DUE)
    # value 5000 − 15 % (750) − label 500
    assert r.refund_due_minor() == 3750
    with pytest.raises(InvalidInput, match="refund of 5000 exceeds the 3750 due"):
        r.mark_refunded(5000)
    with pytest.raises(InvalidInput, match="does not match the 3750 due"):
        r.mark_refunded(3000)
    r.mark_refunded(3750)
    assert r.refund_state is RefundState.REFUNDED and r.refunded_minor == 3750
    with pytest.raises(InvalidInput, match="closed for receiving"):
        r.receive("A", 1, "WH-NJ")


def test_seller_fault_returns_are_refunded_in_full() -> None:
    r = rma(reason=ReturnReason.DEFECTIVE)
    r.receive("A", 1, "WH-NJ")
    r.grade("A", 1, Grade.SCRAP)
    r.close_receiving()  # the rest never came back
    assert r.status is RmaStatus.GRADED and r.refund_state is RefundState.DUE
    assert r.refund_due_minor() == 2000


def test_bad_quantities() -> None:
    r = rma()
    with pytest.raises(InvalidInput, match="positive whole number"):
        r.receive("A", 0, "WH-NJ")
    with pytest.raises(InvalidInput, match="need a location"):
        r.receive("A", 1, "")
    with pytest.raises(InvalidInput, match="positive whole number"):
        r.grade("A", -1, Grade.SCRAP)


def test_grade_movements_directly() -> None:
    moves = grade_movements("R9", "A", "WH-1", 3, Grade.DAMAGED, "k")
    assert [(m.kind, m.qty, m.key) for m in moves] == [(K.UNQUARANTINE, 3, "k:unquarantine"), (K.DAMAGE, 3, "k:damage")]
