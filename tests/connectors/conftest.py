from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from accord.app.ports import ManualClock
from accord.connectors.base import Connector
from accord.connectors.registry import create_connector
from accord.sandbox.app import Sandbox, channel_config, create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig

T = TypeVar("T")
BASE = "http://sandbox"


class Env:
    def __init__(self, specs: list[ChannelSpec], **config: Any) -> None:
        self.clock = ManualClock()
        self.app = create_app(SandboxConfig(channels=specs, clock=self.clock, **config))
        self.sandbox: Sandbox = sandbox_of(self.app)
        self.transport: httpx.AsyncBaseTransport = httpx.ASGITransport(app=self.app)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.transport, base_url=BASE)

    def connector(self, channel_id: str, client: httpx.AsyncClient, **overrides: Any) -> Any:
        limits = overrides.pop("limits", None)
        cfg = channel_config(self.sandbox, channel_id, BASE, **overrides)
        conn: Connector = create_connector(cfg, client, limits=limits, clock=self.clock)
        return conn

    def run(self, fn: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        async def main() -> T:
            async with self.client() as client:
                return await fn(client)

        return asyncio.run(main())


def listings(*skus: str, qty: int = 10, **kw: Any) -> list[ListingSpec]:
    return [ListingSpec(sku=s, qty=qty, title=f"Title {s}", **kw) for s in skus]


@pytest.fixture
def make_env() -> Iterator[Callable[..., Env]]:
    yield Env
