"""Content and price updates in each dialect's real shapes (what the sync engine sends from the PIM)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx

from accord.connectors.amazon import AmazonConnector
from accord.connectors.base import ContentUpdate, ItemStatus
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings
from .spapi import LISTINGS, ValidatingTransport, validate


def test_amazon_bullets_and_attributes_are_listing_attributes_in_the_items_language(
    make_env: Callable[..., Env],
) -> None:
    env = make_env([ChannelSpec("amazon-de", "amazon", listings("A1"), currency="EUR")])
    vt = ValidatingTransport(env.transport)
    env.transport = vt
    update = ContentUpdate(
        "A1", title="Hemd", bullets=("Weich", "Robust"), attributes={"brand": "Acme"}, locale="de_DE"
    )

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-de", client)
        body = conn.content_patch_request(update)
        validate(LISTINGS, "ListingsItemPatchRequest", body)
        (r,) = await conn.update_content([update])
        assert r.ok
        (wrong,) = await conn.update_content([ContentUpdate("A1", price=Decimal("9.50"), currency="USD")])
        assert wrong.status is ItemStatus.REJECTED  # the marketplace's currency only

    env.run(go)
    listing = env.sandbox.listing("amazon-de", "A1")
    assert listing.title == "Hemd"
    assert listing.attributes["bullet_point"] == [
        {"value": "Weich", "language_tag": "de_DE", "marketplace_id": "ATVPDKIKX0DER"},
        {"value": "Robust", "language_tag": "de_DE", "marketplace_id": "ATVPDKIKX0DER"},
    ]
    assert listing.attributes["brand"][0]["value"] == "Acme"
    assert listing.price == Decimal("10.00")


def test_shopify_price_goes_to_the_variant_found_by_sku(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("shop", "shopify", listings("S1", "S2"))])

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("shop", client)
        inventory_item = env.sandbox.listing("shop", "S1").ref  # what quantity writes address: not a Product
        ok, other = await conn.update_content(
            [
                ContentUpdate("S1", inventory_item, title="Tee", price=Decimal("24.50"), currency="USD"),
                ContentUpdate("S2", description="<p>Soft</p>"),
            ]
        )
        assert ok.ok and other.ok
        (eur,) = await conn.update_content([ContentUpdate("S1", price=Decimal("20"), currency="EUR")])
        assert (eur.status, eur.reason) == (ItemStatus.REJECTED, "currency")
        (ghost,) = await conn.update_content([ContentUpdate("NOPE", title="x")])
        assert (ghost.status, ghost.reason) == (ItemStatus.REJECTED, "not_found")

    env.run(go)
    s1, s2 = env.sandbox.listing("shop", "S1"), env.sandbox.listing("shop", "S2")
    assert (s1.title, s1.price) == ("Tee", Decimal("24.50"))
    assert s2.description == "<p>Soft</p>" and s2.price == Decimal("10.00")
    ops = [c.operation for c in env.sandbox.calls("shop")]
    assert ops.count("graphql") >= 4


def test_ebay_price_finds_the_offer_when_no_offer_id_is_known(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("eb", "ebay", listings("E1"), currency="EUR")])

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("eb", client)
        (r,) = await conn.update_content([ContentUpdate("E1", title="Hemd", price=Decimal("26.00"), currency="EUR")])
        assert r.ok

    env.run(go)
    listing = env.sandbox.listing("eb", "E1")
    assert (listing.title, listing.price) == ("Hemd", Decimal("26.00"))
    assert "getOffers" in [c.operation for c in env.sandbox.calls("eb")]


def test_walmart_content_is_unsupported_and_says_so_but_its_price_goes(make_env: Callable[..., Env]) -> None:
    env = make_env([ChannelSpec("wm", "walmart", listings("W1"))])

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("wm", client)
        content, price = await conn.update_content(
            [ContentUpdate("W1", title="Tee"), ContentUpdate("W1", price=Decimal("12.00"), currency="USD")]
        )
        assert (content.status, content.reason) == (ItemStatus.REJECTED, "unsupported")
        assert content.detail is not None and "MP_ITEM" in content.detail
        assert price.ok

    env.run(go)
    assert env.sandbox.listing("wm", "W1").title == "Title W1"
    assert env.sandbox.listing("wm", "W1").price == Decimal("12.00")
