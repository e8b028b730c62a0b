from __future__ import annotations

from collections.abc import Callable

import httpx

from accord.connectors.base import ContentUpdate, ItemStatus, Limits, QuantityUpdate
from accord.connectors.ebay import EbayConnector
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings

SKUS = [f"E{i:02d}" for i in range(30)]


def test_bulk_update_is_chunked_to_25_with_per_item_status(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("ebay-us", "ebay", listings(*SKUS))])

    async def go(client: httpx.AsyncClient) -> None:
        conn: EbayConnector = env.connector("ebay-us", client)
        items = [QuantityUpdate(s, 1) for s in SKUS] + [QuantityUpdate("GHOST", 1), QuantityUpdate("E00", -5)]
        results = await conn.set_quantities(items)
        assert [r.status for r in results[:30]] == [ItemStatus.OK] * 30
        assert (results[30].status, results[30].reason) == (ItemStatus.REJECTED, "not_found")
        assert (results[31].status, results[31].reason) == (ItemStatus.REJECTED, "invalid")
        snaps = await conn.get_quantities(["E00", "E29", "GHOST"])
        assert [s.qty for s in snaps] == [1, 1, None]

    env.run(go)
    assert [c.status for c in env.sandbox.calls("ebay-us", 0) if c.operation == "bulkUpdatePriceQuantity"] == [200, 207]


def test_daily_revision_cap_is_retryable(make_env: Callable[..., Env]) -> None:
    limits = Limits("ebay", 25, 50, 25, daily_updates_per_listing=2)
    env = make_env([ChannelSpec("ebay-us", "ebay", listings("E1"), limits=limits)])

    async def go(client: httpx.AsyncClient) -> None:
        conn: EbayConnector = env.connector("ebay-us", client)
        for qty in (1, 2):
            assert (await conn.set_quantities([QuantityUpdate("E1", qty)]))[0].ok
        (r,) = await conn.set_quantities([QuantityUpdate("E1", 3)])
        assert (r.status, r.reason) == (ItemStatus.RETRYABLE, "daily_cap")
        env.clock.advance(86_400_000)
        assert (await conn.set_quantities([QuantityUpdate("E1", 3)]))[0].ok

    env.run(go)


def test_content_update_keeps_quantity_and_orders_page(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("ebay-us", "ebay", listings("E1", qty=7))])
    env.sandbox.place_order("ebay-us", "E1", 2)

    async def go(client: httpx.AsyncClient) -> None:
        conn: EbayConnector = env.connector("ebay-us", client)
        (r,) = await conn.update_content([ContentUpdate("E1", title="Renamed", attributes={"Colour": "Red"})])
        assert r.ok
        page = await conn.fetch_orders(None)
        assert [(o.lines[0].sku, o.lines[0].qty) for o in page.orders] == [("E1", 2)]
        again = await conn.fetch_orders(page.next_cursor)
        assert again.orders == []  # the cursor skips what was already seen

    env.run(go)
    listing = env.sandbox.listing("ebay-us", "E1")
    assert (listing.title, listing.qty) == ("Renamed", 5)
