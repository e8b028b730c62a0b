from __future__ import annotations

import asyncio

import httpx
import pytest

from accord.app.ports import ManualClock
from accord.connectors.amazon import AmazonConnector
from accord.connectors.base import ItemStatus, QuantityUpdate
from accord.sandbox.app import channel_config, create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig
from accord.sandbox.server import running_server


def config(seed: int = 7, **kw: object) -> SandboxConfig:
    specs = [
        ChannelSpec(
            "amazon-us",
            "amazon",
            [ListingSpec("A", qty=5, demand_per_hour=4), ListingSpec("B", qty=50, demand_per_hour=2)],
        ),
        ChannelSpec("shop", "shopify", [ListingSpec("A", qty=5, demand_per_hour=3)]),
    ]
    return SandboxConfig(channels=specs, seed=seed, clock=ManualClock(), **kw)  # type: ignore[arg-type]


def orders_after_day(seed: int) -> list[tuple[str, str, int, int]]:
    sandbox = sandbox_of(create_app(config(seed)))
    placed = sandbox.tick(24 * 3_600_000)
    return [(o.channel_id, o.sku, o.qty, o.created_ms) for o in placed]


def test_demand_is_deterministic_and_never_sells_more_than_shown() -> None:
    assert orders_after_day(7) == orders_after_day(7)
    assert orders_after_day(7) != orders_after_day(8)
    sandbox = sandbox_of(create_app(config()))
    placed = sandbox.tick(24 * 3_600_000)
    sold_a = sum(o.qty for o in placed if o.channel_id == "amazon-us" and o.sku == "A")
    assert sold_a == 5  # demand of ~96 units meets 5 shown: sold out, the rest is lost demand
    assert sandbox.listing("amazon-us", "A").qty == 0
    assert sandbox.channel("amazon-us").lost_demand > 0
    assert all(o.qty <= o.shown_qty for o in placed)
    assert [o.created_ms for o in placed] == sorted(o.created_ms for o in placed)
    assert sandbox.clock.now_ms() == 1_767_225_600_000 + 24 * 3_600_000


def test_stale_quantity_causes_a_real_oversell() -> None:
    """The seller has 1 unit left, but the channel still shows 5: buyers buy what is shown."""
    sandbox = sandbox_of(create_app(config()))
    seller_on_hand = 1
    placed = sandbox.tick(24 * 3_600_000)
    sold = sum(o.qty for o in placed if o.channel_id == "amazon-us" and o.sku == "A")
    assert sold > seller_on_hand  # oversold: the orders exist on the channel
    assert sandbox.place_order("amazon-us", "A", 1) is None  # now it shows 0: nothing more sells


def test_control_api_faults_orders_calls_and_429() -> None:
    app = create_app(config(missing_retry_after_rate=0.0))

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sbx") as c:
            r = await c.post("/_control/channels/amazon-us/orders", json={"sku": "A", "qty": 9})
            assert r.status_code == 200 and r.json()["qty"] == 5 and r.json()["shown_qty"] == 5
            assert (await c.post("/_control/channels/amazon-us/orders", json={"sku": "A"})).status_code == 409
            assert (await c.put("/_control/channels/amazon-us/faults", json={"script": ["bogus"]})).status_code == 400
            assert (await c.put("/_control/channels/amazon-us/faults", json={"script": ["500"]})).status_code == 200
            headers = {"x-amz-access-token": "sandbox-token"}
            path = "/amazon-us/listings/2021-08-01/items/SANDBOXSELLER/B?marketplaceIds=ATVPDKIKX0DER"
            assert (await c.get(path, headers=headers)).status_code == 500
            statuses = [(await c.get(path, headers=headers)).status_code for _ in range(11)]
            assert statuses == [200] * 10 + [429]  # getListingsItem burst 10
            last = await c.get(path, headers=headers)
            assert last.status_code == 429 and last.headers["retry-after"] == "1"
            assert (await c.get(path)).status_code == 403
            calls = (await c.get("/_control/calls", params={"channel": "amazon-us"})).json()["calls"]
            assert [x["status"] for x in calls][:2] == [500, 200] and calls[0]["fault"] == "500"
            assert all(x["operation"] == "getListingsItem" for x in calls)
            tick = await c.post("/_control/tick", json={"advance_ms": 3_600_000})
            assert tick.status_code == 200
            state = (await c.get("/_control/state")).json()
            assert state["now_ms"] == 1_767_225_600_000 + 3_600_000
            await c.delete("/_control/calls")
            assert (await c.get("/_control/calls")).json()["calls"] == []
            wh = (await c.get("/_control/channels/shop/webhooks")).json()["deliveries"]
            assert all(d["headers"]["X-Shopify-Topic"] == "orders/create" for d in wh)
            assert (await c.get("/nope/x")).status_code == 404

    asyncio.run(go())


def test_missing_retry_after_is_configurable() -> None:
    app = create_app(config(missing_retry_after_rate=1.0))
    sandbox = sandbox_of(app)
    sandbox.set_faults("amazon-us", script=["429"])

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sbx") as c:
            r = await c.get("/amazon-us/orders/v0/orders", headers={"x-amz-access-token": "sandbox-token"})
            assert r.status_code == 429 and "retry-after" not in r.headers

    asyncio.run(go())


def test_add_channel_via_control_api() -> None:
    app = create_app(SandboxConfig(clock=ManualClock()))

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sbx") as c:
            body = {"channel_id": "ml-mx", "dialect": "mercadolibre", "listings": {"M1": {"qty": 3}}}
            assert (await c.post("/_control/channels", json=body)).status_code == 201
            assert (await c.post("/_control/channels", json=body)).status_code == 400
            listing = (await c.get("/_control/channels/ml-mx/listings")).json()["listings"]["M1"]
            assert listing["qty"] == 3

    asyncio.run(go())
    with pytest.raises(ValueError):
        sandbox_of(app).add_channel(ChannelSpec("_bad", "amazon"))


def test_connector_over_loopback_uvicorn() -> None:
    app = create_app(config())
    sandbox = sandbox_of(app)
    with running_server(app) as base_url:

        async def go() -> None:
            async with httpx.AsyncClient() as client:
                conn = AmazonConnector(channel_config(sandbox, "amazon-us", base_url), client)
                (r,) = await conn.set_quantities([QuantityUpdate("B", 3)])
                assert r.status is ItemStatus.OK
                snaps = await conn.get_quantities(["B"])
                assert snaps[0].qty == 3
                resp = await client.get(f"{base_url}/_control/calls")
                assert [c["operation"] for c in resp.json()["calls"]] == ["patchListingsItem", "getListingsItem"]
                assert sandbox.listing("amazon-us", "B").qty == 3

        asyncio.run(go())
