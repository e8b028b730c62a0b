"""A small stocked world on each backend (the ``backend`` fixture from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from accord.app.ports import ManualClock, SequentialIds
from accord.bootstrap import App, build_app
from accord.domain.availability import Channel, Location, LocationKind
from accord.domain.catalog import Sku
from accord.domain.ledger import Movement, MovementKind
from accord.domain.returns import Payer, ReturnPolicy
from accord.orders import OrderService, ReturnService

DAY_MS = 86_400_000


@dataclass
class World:
    app: App
    clock: ManualClock
    orders: OrderService
    returns: ReturnService

    def balance(self, sku: str, location: str) -> tuple[int, int, int, int, int]:
        for _sku, loc, b in self.app.engine.balances(sku):
            if loc == location:
                return b.as_tuple()
        return (0, 0, 0, 0, 0)

    def count(self, table: Any) -> int:
        import sqlalchemy as sa

        with self.app.db.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            conn.rollback()
        return int(n)


def setup_world(app: App) -> None:
    e = app.engine
    e.add_location(Location("WH-E", LocationKind.WAREHOUSE, "us", "US"))
    e.add_location(Location("WH-W", LocationKind.WAREHOUSE, "us", "US"))
    e.add_location(Location("FBA", LocationKind.PLATFORM_FC, "us", "US", owner_channel="amz"))
    e.add_channel(Channel("shop", "shopify", "us", "USD", ("WH-E", "WH-W")))
    e.add_channel(Channel("amz", "amazon", "us", "USD", ("FBA", "WH-E", "WH-W")))
    e.add_skus([Sku("A", "Item A"), Sku("B", "Item B")])
    e.move_batch(
        [
            Movement(MovementKind.RECEIVE, "A", "WH-E", 10, "seed-a-e"),
            Movement(MovementKind.RECEIVE, "A", "WH-W", 5, "seed-a-w"),
            Movement(MovementKind.RECEIVE, "B", "WH-W", 5, "seed-b-w"),
            Movement(MovementKind.RECEIVE, "A", "FBA", 3, "seed-a-fba"),
        ]
    )


@pytest.fixture
def world(backend: Any) -> Iterator[World]:
    clock = ManualClock()
    app = build_app(database_url=backend.url, clock=clock, ids=SequentialIds())
    try:
        setup_world(app)
        orders = OrderService(app.engine)
        orders.set_location_geo("WH-E", 40.71, -74.0)
        orders.set_location_geo("WH-W", 34.05, -118.24)
        orders.set_location_geo("FBA", 39.95, -75.17, handling_days=0.5)
        returns = ReturnService(app.engine)
        returns.set_policy(ReturnPolicy("US-30-day", "us", 30, Payer.BUYER, 10, 500))
        yield World(app, clock, orders, returns)
    finally:
        app.close()
