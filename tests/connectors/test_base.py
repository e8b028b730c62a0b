from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from accord.app.ports import ManualClock
from accord.connectors.base import (
    ChannelConfig,
    ConnectorTimeout,
    HttpConnector,
    MalformedResponse,
    RateLimited,
    ServerError,
    TransportError,
    load_limits,
    parse_retry_after,
)
from accord.connectors.registry import DIALECTS, create_connector


class Probe(HttpConnector):
    dialect = "walmart"


def call(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            conn = Probe(ChannelConfig("w", "walmart", "http://x", timeout_s=1), client, clock=ManualClock(0))
            resp = await conn.request("GET", "/v3/inventory")
            conn.decode(resp)
            return resp

    return asyncio.run(go())


def test_429_with_and_without_retry_after() -> None:
    with pytest.raises(RateLimited) as err:
        call(lambda r: httpx.Response(429, headers={"Retry-After": "7"}, text='{"e":1}'))
    assert (err.value.retry_after_s, err.value.body, err.value.retryable) == (7.0, '{"e":1}', True)
    with pytest.raises(RateLimited) as err:
        call(lambda r: httpx.Response(429, text="slow down"))
    assert err.value.retry_after_s is None and err.value.body == "slow down"


def test_5xx_timeout_transport_and_malformed() -> None:
    with pytest.raises(ServerError) as err:
        call(lambda r: httpx.Response(502, text="bad gateway"))
    assert err.value.status == 502 and err.value.body == "bad gateway"

    def timeout(r: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=r)

    with pytest.raises(ConnectorTimeout):
        call(timeout)

    def refused(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=r)

    with pytest.raises(TransportError):
        call(refused)
    with pytest.raises(MalformedResponse) as malformed:
        call(lambda r: httpx.Response(200, text='{"sku": '))
    assert malformed.value.retryable and malformed.value.body == '{"sku": '


def test_retry_after_http_date() -> None:
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now_ms=10_000) == 20.0
    assert parse_retry_after("soon", now_ms=0) is None
    assert parse_retry_after(None, now_ms=0) is None


def test_limits_data_covers_every_dialect() -> None:
    limits = load_limits()
    assert set(limits) == set(DIALECTS)
    assert limits["ebay"].max_batch_size == 25 and limits["ebay"].daily_updates_per_listing == 250
    assert limits["amazon"].for_operation("getOrders").burst == 20
    assert limits["amazon"].for_operation("unknownOp").rate_per_s == 5
    assert limits["shopify"].supports_compare_and_set and limits["shopify"].cost_bucket_size == 2000
    assert limits["lazada"].stock_lock_during_campaigns


def test_registry() -> None:
    async def go() -> None:
        async with httpx.AsyncClient() as client:
            conn = create_connector(ChannelConfig("a", "amazon", "http://x"), client)
            assert conn.dialect == "amazon"
            with pytest.raises(ValueError):
                create_connector(ChannelConfig("a", "nope", "http://x"), client)
            with pytest.raises(ValueError):
                create_connector(ChannelConfig("a", "amazon", "http://x"), None)

    asyncio.run(go())
