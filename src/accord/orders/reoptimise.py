"""Event-driven re-optimisation: when stock of a SKU goes up somewhere (received, transfer arrived, reservation
released, quarantine released, adjusted up, counted), the routed, unreleased orders with a line of that SKU are
re-optimised against the new stock, in the relay's transaction (the inbox makes each event count once).

A ``MovementsRecorded`` event lists every movement of one transaction: each SKU × location where stock went up is
re-optimised once per event. Bounded: at most ``max_orders`` orders per SKU × location — those holding the SKU
elsewhere than where it went up (the ones that could move), soonest ship-by first. Releases written by routing
itself (``order:…:release`` keys) are skipped, so re-optimising never feeds on its own moves. Movement events
written before ``MovementsRecorded`` (one per movement, ``StockReceived``, …) are still understood.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from accord.app.relay import StoredEvent
from accord.domain.events import LEGACY_MOVEMENT_KINDS, MOVEMENTS_RECORDED, recorded_movements
from accord.domain.ledger import MOVEMENT_EVENTS, MovementKind
from accord.orders.service import OrderService
from accord.store.db import Tx

log = logging.getLogger(__name__)

STOCK_UP_KINDS: frozenset[str] = frozenset(
    k.value
    for k in (
        MovementKind.RECEIVE,
        MovementKind.TRANSFER_IN,
        MovementKind.RELEASE,
        MovementKind.UNQUARANTINE,
        MovementKind.ADJUST,
        MovementKind.COUNT,
    )
)
STOCK_UP: frozenset[str] = frozenset(
    {MOVEMENTS_RECORDED, *(name for name, kind in LEGACY_MOVEMENT_KINDS.items() if kind in STOCK_UP_KINDS)}
)
MAX_ORDERS_PER_EVENT = 50


def raises_stock(movement: Mapping[str, Any]) -> bool:
    """Whether a recorded movement (as ``MovementsRecorded`` lists it) can make more units available for routing."""
    kind = movement.get("kind")
    if kind not in STOCK_UP_KINDS:
        return False
    if kind == MovementKind.ADJUST.value:
        return int(movement.get("qty", 0)) > 0
    if kind == MovementKind.RELEASE.value:
        key = str(movement.get("key", ""))
        return not (key.startswith("order:") and key.endswith(":release"))  # a routing move, not freed stock
    return True


class ReoptimiseSubscriber:
    """Relay subscriber (transactional): stock up for a SKU → re-optimise the open orders that want it."""

    name = "order-reoptimise"
    types: frozenset[str] | None = STOCK_UP
    transactional = True

    def __init__(self, orders: OrderService, max_orders: int = MAX_ORDERS_PER_EVENT) -> None:
        if max_orders <= 0:
            raise ValueError("max_orders must be positive")
        self.orders = orders
        self.max_orders = max_orders

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        assert tx is not None, "order-reoptimise is transactional"
        ups: dict[tuple[str, str | None], str] = {}  # (sku, location) -> past-tense name of its first stock-up
        for mv in recorded_movements(event.type, event.data):
            if raises_stock(mv):
                loc = mv.get("location")
                where = (str(mv.get("sku") or event.key), str(loc) if loc else None)
                ups.setdefault(where, MOVEMENT_EVENTS[MovementKind(mv["kind"])])
        for (sku, loc), why in ups.items():
            result = self.orders.reoptimise_in(tx, limit=self.max_orders, sku=sku, location=loc, cause=f"stock:{why}")
            if result["changed"]:
                log.info("stock up for %s (%s): re-routed %s", sku, why, ", ".join(result["changed"]))
