"""A small world for sync tests: Accord on a test database plus the sandbox in-process (ASGI), one virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from accord.app.ports import ManualClock, SequentialIds
from accord.app.relay import Relay
from accord.bootstrap import build_app
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.domain.ledger import Movement, MovementKind
from accord.sandbox.app import channel_config, create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig
from accord.sync.orders import OrderIngestor
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber
from accord.sync.worker import SyncWorker, WorkerOptions, build_connectors

T = TypeVar("T")
BASE = "http://sandbox"
CHANNELS: tuple[tuple[str, str], ...] = (("shop", "shopify"), ("amz", "amazon"), ("eb", "ebay"))


class Harness:
    def __init__(
        self,
        url: str,
        stock: dict[str, int],
        channels: tuple[tuple[str, str], ...] = CHANNELS,
        *,
        shown: dict[str, int] | None = None,
        threshold: int = 0,
        currencies: Mapping[str, str] | None = None,
        **sandbox_kw: Any,
    ) -> None:
        currencies = currencies or {}
        self.clock = ManualClock()
        self.app = build_app(database_url=url, clock=self.clock, ids=SequentialIds())
        self.engine = self.app.engine
        self.engine.add_location(Location("wh", LocationKind.WAREHOUSE, "us", "US"))
        for ch, dialect in channels:
            policy = StockPolicy(zero_at_or_below=threshold)
            self.engine.add_channel(Channel(ch, dialect, "us", currencies.get(ch, "USD"), ("wh",), policy))
        self.engine.add_skus([Sku(s, f"title {s}") for s in sorted(stock)])
        self.engine.move_batch(
            [Movement(MovementKind.RECEIVE, s, "wh", q, f"rcv:{s}") for s, q in sorted(stock.items()) if q > 0]
        )
        shown = shown or {}
        specs = [
            ChannelSpec(
                ch, dialect, [ListingSpec(s, qty=shown.get(s, 0)) for s in sorted(stock)], currencies.get(ch, "USD")
            )
            for ch, dialect in channels
        ]
        self.sandbox_app = create_app(SandboxConfig(channels=specs, clock=self.clock, **sandbox_kw))
        self.sandbox = sandbox_of(self.sandbox_app)
        self.store = SyncStore(self.app.db)
        self.relay = Relay(self.app.db, [SyncSubscriber(self.store, self.clock)], self.clock, gap_timeout_ms=0)
        for ch, _ in channels:
            self.store.set_endpoint(channel_config(self.sandbox, ch, BASE), self.clock.now_ms())
        self.orders = OrderIngestor(self.engine)

    def close(self) -> None:
        self.app.close()

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.sandbox_app), base_url=BASE)

    def run(self, fn: Callable[[SyncWorker], Awaitable[T]], **options: Any) -> T:
        async def main() -> T:
            async with self.client() as client:
                conns = build_connectors(self.store.endpoints(), client, self.clock)
                worker = SyncWorker(self.store, conns, self.clock, WorkerOptions(**options), self.orders)
                return await fn(worker)

        return asyncio.run(main())

    def run_with(self, connectors: Mapping[str, Any], fn: Callable[[SyncWorker], Awaitable[T]], **options: Any) -> T:
        """Like :meth:`run` with hand-made connectors (fakes) in place of the sandbox's."""

        async def main() -> T:
            worker = SyncWorker(self.store, connectors, self.clock, WorkerOptions(**options), self.orders)
            return await fn(worker)

        return asyncio.run(main())

    def shown(self, channel: str, sku: str) -> int:
        return self.sandbox.listing(channel, sku).qty

    def reserve(self, sku: str, qty: int, key: str) -> None:
        self.engine.move(Movement(MovementKind.RESERVE, sku, "wh", qty, key))
