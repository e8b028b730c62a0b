"""Order lifecycle, SLA and channel health rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.orders import (
    AMAZON_BARS,
    ORDER_EVENTS,
    TERMINAL,
    TRANSITIONS,
    CancelReason,
    Order,
    OrderLine,
    OrderStatus,
    Shipment,
    SlaPolicy,
    SlaState,
    channel_health,
    check_transition,
    evaluate_sla,
    is_valid_tracking,
    new_order,
    ship_by_for,
)

S = OrderStatus
T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def make(order_id: str = "O1", channel: str = "amazon-us", qty: tuple[int, ...] = (2, 1)) -> Order:
    lines = [OrderLine(str(i + 1), f"SKU-{i + 1}", q) for i, q in enumerate(qty)]
    order, _ = new_order(order_id, channel, T0, lines, T0 + timedelta(hours=24))
    return order


def status(o: Order) -> OrderStatus:
    """Read the status through a call so the type checker does not narrow it across transitions."""
    return o.status


def parcel(sid: str, lines: dict[str, int], at: datetime, tracking: str = "1Z999AA10123456784") -> Shipment:
    return Shipment(sid, "WH-NJ", lines, "UPS", tracking, at)


def test_happy_path_emits_one_event_per_transition() -> None:
    o = make()
    events = [o.history[0].event]
    events.append(o.reserve(T0).event)
    events.append(o.route(T0).event)
    events.append(o.ship(parcel("S1", {"1": 1}, T0 + timedelta(hours=2))).event)
    assert status(o) is S.PARTIALLY_SHIPPED
    events.append(o.ship(parcel("S2", {"1": 1, "2": 1}, T0 + timedelta(hours=3))).event)
    assert o.fully_shipped
    assert status(o) is S.SHIPPED
    events.append(o.deliver(T0 + timedelta(days=2)).event)
    events.append(o.refund(T0 + timedelta(days=9)).event)
    assert events == [
        "OrderPlaced",
        "OrderReserved",
        "OrderRouted",
        "OrderPartiallyShipped",
        "OrderShipped",
        "OrderDelivered",
        "OrderRefunded",
    ]
    assert status(o) is S.REFUNDED and S.REFUNDED in TERMINAL
    assert set(ORDER_EVENTS) == set(OrderStatus) == set(TRANSITIONS)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.PLACED, S.ROUTED),
        (S.PLACED, S.SHIPPED),
        (S.RESERVED, S.SHIPPED),
        (S.SHIPPED, S.CANCELLED),
        (S.DELIVERED, S.CANCELLED),
        (S.CANCELLED, S.RESERVED),
        (S.REFUNDED, S.DELIVERED),
        (S.PLACED, S.DELIVERED),
    ],
)
def test_invalid_transitions_name_both_states(start: OrderStatus, target: OrderStatus) -> None:
    with pytest.raises(InvalidInput, match=f"from {start.value} to {target.value}"):
        check_transition(start, target)


def test_rejected_transition_leaves_the_order_unchanged() -> None:
    o = make()
    with pytest.raises(InvalidInput, match="cannot go from placed to delivered; from placed it may go to cancelled"):
        o.deliver(T0)
    with pytest.raises(InvalidInput, match="from placed to shipped"):
        o.ship(parcel("S1", {"1": 2, "2": 1}, T0))
    assert o.status is S.PLACED and o.shipments == [] and len(o.history) == 1


def test_cancel_and_refund_where_allowed() -> None:
    o = make()
    o.reserve(T0)
    t = o.cancel(T0 + timedelta(hours=1), CancelReason.SELLER)
    assert t.event == "OrderCancelled" and t.detail == "seller"
    assert o.cancel_reason is CancelReason.SELLER
    o.refund(T0 + timedelta(hours=2))
    with pytest.raises(InvalidInput, match="terminal state"):
        o.reserve(T0)


def test_reroute_is_a_routed_to_routed_transition() -> None:
    o = make()
    o.reserve(T0)
    o.route(T0)
    assert o.route(T0 + timedelta(hours=1), "WH-NJ failed").event == "OrderRouted"


def test_shipping_more_than_ordered_is_rejected() -> None:
    o = make()
    o.reserve(T0)
    o.route(T0)
    with pytest.raises(InvalidInput, match="3 of line 1 but only 2 still to ship"):
        o.ship(parcel("S1", {"1": 3}, T0))
    with pytest.raises(NotFound, match="order line"):
        o.ship(parcel("S1", {"9": 1}, T0))
    with pytest.raises(InvalidInput, match="must be positive"):
        o.ship(parcel("S1", {"1": 0}, T0))
    with pytest.raises(InvalidInput, match="no lines"):
        o.ship(parcel("S1", {}, T0))
    o.ship(parcel("S1", {"1": 1}, T0))
    with pytest.raises(InvalidInput, match="already recorded"):
        o.ship(parcel("S1", {"1": 1}, T0))
    assert o.qty_open("1") == 1 and o.qty_shipped("1") == 1


def test_new_order_bad_input() -> None:
    ok = [OrderLine("1", "A", 1)]
    with pytest.raises(NotFound, match="channel 'x'"):
        new_order("O", "x", T0, ok, T0, known_channels={"amazon-us"})
    with pytest.raises(NotFound, match="SKU 'A'"):
        new_order("O", "amazon-us", T0, ok, T0, known_skus={"B"})
    for bad in (0, -1):
        with pytest.raises(InvalidInput, match="positive whole number"):
            new_order("O", "amazon-us", T0, [OrderLine("1", "A", bad)], T0)
    with pytest.raises(InvalidInput, match="no lines"):
        new_order("O", "amazon-us", T0, [], T0)
    with pytest.raises(InvalidInput, match="repeats line id"):
        new_order("O", "amazon-us", T0, [OrderLine("1", "A", 1), OrderLine("1", "B", 1)], T0)
    with pytest.raises(InvalidInput, match="before it was placed"):
        new_order("O", "amazon-us", T0, ok, T0 - timedelta(hours=1))
    with pytest.raises(InvalidInput, match="needs an id"):
        new_order("", "amazon-us", T0, ok, T0)


def test_ship_by_from_channel_or_policy() -> None:
    policy = SlaPolicy(handling_hours=48)
    assert ship_by_for(T0, None, policy) == T0 + timedelta(hours=48)
    assert ship_by_for(T0, T0 + timedelta(hours=6), policy) == T0 + timedelta(hours=6)
    with pytest.raises(InvalidInput):
        SlaPolicy(handling_hours=0).check()
    with pytest.raises(InvalidInput):
        SlaPolicy(at_risk_hours=-1).check()


def test_sla_states_against_a_clock() -> None:
    policy = SlaPolicy(handling_hours=24, at_risk_hours=4)
    o = make()  # ship-by T0 + 24 h
    o.reserve(T0)
    o.route(T0)
    assert evaluate_sla(o, T0 + timedelta(hours=1), policy).state is SlaState.ON_TRACK
    risk = evaluate_sla(o, T0 + timedelta(hours=21), policy)
    assert risk.state is SlaState.AT_RISK and risk.alert and risk.remaining == timedelta(hours=3)
    late = evaluate_sla(o, T0 + timedelta(hours=25), policy)
    assert late.state is SlaState.BREACHED and late.alert and late.remaining < timedelta(0)
    o.ship(parcel("S1", {"1": 1}, T0 + timedelta(hours=2)))
    assert evaluate_sla(o, T0 + timedelta(hours=30), policy).state is SlaState.BREACHED  # still not all shipped
    o.ship(parcel("S2", {"1": 1, "2": 1}, T0 + timedelta(hours=20)))
    met = evaluate_sla(o, T0 + timedelta(hours=30), policy)
    assert met.state is SlaState.MET and not met.alert
    late_order = make("O2")
    late_order.reserve(T0)
    late_order.route(T0)
    late_order.ship(parcel("S1", {"1": 2, "2": 1}, T0 + timedelta(hours=26)))
    assert evaluate_sla(late_order, T0 + timedelta(hours=27), policy).state is SlaState.MISSED
    gone = make("O3")
    gone.cancel(T0, CancelReason.BUYER)
    assert evaluate_sla(gone, T0 + timedelta(hours=30), policy).state is SlaState.CLOSED


def test_tracking_validity() -> None:
    assert is_valid_tracking("UPS", "1Z999AA10123456784")
    assert not is_valid_tracking("", "1Z999AA10123456784")
    assert not is_valid_tracking("UPS", "123")
    assert not is_valid_tracking("UPS", "N/A")


def _orders_for_health(n: int, seller_cancels: int, late: int, bad_tracking: int) -> list[Order]:
    out: list[Order] = []
    for i in range(n):
        o = make(f"O{i}", qty=(1,))
        o.reserve(T0)
        if i < seller_cancels:
            o.cancel(T0, CancelReason.SELLER)
        else:
            o.route(T0)
            at = T0 + timedelta(hours=30 if i < seller_cancels + late else 5)
            tracking = "N/A" if i >= n - bad_tracking else "1Z999AA10123456784"
            o.ship(parcel(f"S{i}", {"1": 1}, at, tracking))
        out.append(o)
    return out


def test_health_against_amazon_bars() -> None:
    good = channel_health("amazon-us", _orders_for_health(100, 2, 3, 4))
    assert good.orders == 100
    m = good.metrics
    assert m["cancellation_rate"].value_pct == 2.0 and m["cancellation_rate"].ok
    assert m["late_shipment_rate"].numerator == 3 and m["late_shipment_rate"].denominator == 98
    assert m["late_shipment_rate"].ok
    assert m["valid_tracking_rate"].value_pct == pytest.approx(100 * 94 / 98, abs=1e-3)
    assert good.ok and good.failing() == []

    bad = channel_health("amazon-us", _orders_for_health(100, 3, 5, 6))
    assert bad.failing() == ["cancellation_rate", "late_shipment_rate", "valid_tracking_rate"]
    assert not bad.ok


def test_health_bars_are_exact_at_the_edges() -> None:
    assert not AMAZON_BARS["cancellation_rate"].passes(2.5)
    assert AMAZON_BARS["cancellation_rate"].passes(2.49)
    assert not AMAZON_BARS["late_shipment_rate"].passes(4.0)
    assert AMAZON_BARS["valid_tracking_rate"].passes(95.0)
    assert not AMAZON_BARS["valid_tracking_rate"].passes(94.99)
    assert AMAZON_BARS["valid_tracking_rate"].describe() == "≥ 95 %"


def test_health_ignores_other_channels_and_old_orders_and_handles_empty() -> None:
    orders = _orders_for_health(10, 5, 0, 0)
    empty = channel_health("shopify", orders)
    assert empty.orders == 0 and empty.ok
    assert all(m.value_pct is None for m in empty.metrics.values())
    assert channel_health("amazon-us", orders, since=T0 + timedelta(days=1)).orders == 0
