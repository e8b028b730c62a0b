"""Event-driven re-optimisation: when stock of a SKU goes up somewhere (received, transfer arrived, reservation
released, quarantine released, adjusted up, counted), the routed, unreleased orders with a line of that SKU are
re-optimised against the new stock, in the relay's transaction (the inbox makes each event count once).

Bounded: at most ``max_orders`` orders per event — those holding the SKU elsewhere than where it went up (the
ones that could move), soonest ship-by first. Releases written by routing itself
(``order:…:release`` keys) are skipped, so re-optimising never feeds on its own moves.
"""

from __future__ import annotations

import logging

from accord.app.relay import StoredEvent
from accord.domain.ledger import MOVEMENT_EVENTS, MovementKind
from accord.orders.service import OrderService
from accord.store.db import Tx

log = logging.getLogger(__name__)

STOCK_UP: frozenset[str] = frozenset(
    MOVEMENT_EVENTS[k]
    for k in (
        MovementKind.RECEIVE,
        MovementKind.TRANSFER_IN,
        MovementKind.RELEASE,
        MovementKind.UNQUARANTINE,
        MovementKind.ADJUST,
        MovementKind.COUNT,
    )
)
ADJUSTED = MOVEMENT_EVENTS[MovementKind.ADJUST]
RELEASED = MOVEMENT_EVENTS[MovementKind.RELEASE]
MAX_ORDERS_PER_EVENT = 50


def raises_stock(event: StoredEvent) -> bool:
    """Whether the event can make more units available for routing."""
    if event.type not in STOCK_UP:
        return False
    if event.type == ADJUSTED:
        return int(event.data.get("qty", 0)) > 0
    if event.type == RELEASED:
        key = str(event.data.get("key", ""))
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
        if not raises_stock(event):
            return
        sku = str(event.data.get("sku") or event.key)
        loc = event.data.get("location")
        result = self.orders.reoptimise_in(
            tx, limit=self.max_orders, sku=sku, location=str(loc) if loc else None, cause=f"stock:{event.type}"
        )
        if result["changed"]:
            log.info("stock up for %s (%s): re-routed %s", sku, event.type, ", ".join(result["changed"]))
