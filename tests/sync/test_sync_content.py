"""Price and content sync: a PIM edit becomes desired content and price per channel (in the channel's locale and
currency), coalesced, sent below every quantity change through each dialect's real content calls, held where the
variant is blocked by readiness errors, and parked as a visible dead letter where a dialect cannot take it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from accord.app.relay import Relay
from accord.cli import main
from accord.connectors.base import ContentUpdate
from accord.domain.availability import Channel, StockPolicy
from accord.domain.pim import (
    AssetKind,
    AssetRef,
    AttributeDef,
    AttributeType,
    Category,
    Locale,
    Money,
    Product,
    ProductNode,
    SelectOption,
    Value,
    ValueKey,
)
from accord.pim import Pim
from accord.sandbox.app import channel_config
from accord.sandbox.core import ChannelSpec, ListingSpec
from accord.sync.content import ContentDeriver
from accord.sync.store import CONTENT, P_CONTENT, P_PRICE, PRICE
from accord.sync.subscriber import SyncSubscriber

from .harness import BASE, Harness

T = AttributeType
ALL = frozenset({"*"})
IMG = AssetRef("https://cdn.example.com/p/main.jpg", "image/jpeg", 1600, 1200)
ATTRIBUTES = (
    AttributeDef("title", T.LOCALIZED_TEXT, localizable=True, scopable=True, required_channels=ALL),
    AttributeDef("description", T.RICH_TEXT, localizable=True, scopable=True),
    AttributeDef("bullet_points", T.TEXT_LIST, localizable=True),
    AttributeDef("brand", T.TEXT),
    AttributeDef("main_image", T.ASSET, asset_kind=AssetKind.IMAGE),
    AttributeDef("gtin", T.GTIN),
    AttributeDef("price", T.PRICE, scopable=True),
    AttributeDef("size", T.SINGLE_SELECT, options=(SelectOption("s"), SelectOption("m"))),
)
# channel, dialect, currency, country, locale
CHANNELS = (
    ("amz", "amazon", "USD", "US", "en_US"),
    ("eb", "ebay", "EUR", "DE", "de_DE"),
    ("shop", "shopify", "USD", "US", "en_US"),
    ("ml", "mercadolibre", "USD", "US", "en_US"),
    ("wm", "walmart", "USD", "US", "en_US"),
)
SKUS = ("TEE-S", "TEE-M")


class World:
    def __init__(self, url: str) -> None:
        self.h = Harness(
            url,
            dict.fromkeys(SKUS, 5),
            channels=tuple((c[0], c[1]) for c in CHANNELS),
            currencies={c[0]: c[2] for c in CHANNELS},
        )
        self.pim = Pim(self.h.app.db, self.h.engine)
        self.pim.set_locales((Locale("en_US"), Locale("de_DE", "en_US")))
        for a in ATTRIBUTES:
            self.pim.set_attribute(a)
        self.pim.set_family("general", [a.code for a in ATTRIBUTES])
        self.pim.set_category(Category("all"))
        for ch, dialect, _cur, country, locale in CHANNELS:
            rules = "shopify" if dialect == "mercadolibre" else dialect  # the built-in rules dialects
            self.pim.set_channel_context(
                ch, country=country, locales=(locale,), vat_inclusive=False, packs=(), rules_dialect=rules
            )
        sub = SyncSubscriber(self.h.store, self.h.clock, ContentDeriver(self.pim))
        self.h.relay = Relay(self.h.app.db, [sub], self.h.clock, gap_timeout_ms=0)
        self.title = "Tee"

    def product(self, title: str, price_usd: str = "19.99", price_eur: str = "21.99", **scoped: Value) -> Product:
        values: dict[ValueKey, Value] = {
            ValueKey("brand"): "Acme",
            ValueKey("main_image"): IMG,
            ValueKey("gtin"): "4006381333931",
            ValueKey("price"): (Money(Decimal(price_eur), "EUR"), Money(Decimal(price_usd), "USD")),
            ValueKey("title", "en_US"): title,
            ValueKey("title", "de_DE"): f"{title} (de)",
            ValueKey("description", "en_US"): "A good tee",
            ValueKey("bullet_points", "en_US"): ("Soft", "Durable"),
        }
        for key, v in scoped.items():
            attribute, channel = key.split("__")
            values[ValueKey(attribute, "de_DE" if channel == "eb" else "en_US", channel)] = v
        nodes = [ProductNode("TEE", None, values, axes=("size",), categories=frozenset({"all"}))]
        nodes += [ProductNode(f"TEE-{s.upper()}", "TEE", {ValueKey("size"): s}) for s in ("s", "m")]
        return Product("TEE", "general", tuple(nodes))

    def edit(self, title: str, **kw: Any) -> None:
        self.pim.upsert_product(self.product(title, **kw))

    def sync(self) -> None:
        """Relay, then send until nothing is due, a virtual second at a time (the buckets refill)."""
        self.h.relay.drain()
        self.send()

    def send(self) -> None:
        for _ in range(30):
            self.h.run(lambda w: w.drain())
            if all(self.h.store.next_due_ms(ch) is None for ch, *_ in CHANNELS):  # held keys are never due
                return
            self.h.clock.advance(1_000)
        raise AssertionError("the queues did not drain")

    def listing(self, channel: str, sku: str = "TEE-S") -> Any:
        return self.h.sandbox.listing(channel, sku)

    def content_calls(self, channel: str) -> int:
        ops = {"patchListingsItem", "createOrReplaceInventoryItem", "graphql", "putItem", "putDescription"}
        return sum(
            1 for c in self.h.sandbox.calls(channel) if c.operation in ops and c.method in ("PATCH", "PUT", "POST")
        )


@pytest.fixture
def w(backend: Any) -> Iterator[World]:
    world = World(backend.url)
    try:
        world.edit("Tee")
        world.sync()  # first content, prices and quantities everywhere
        yield world
    finally:
        world.h.close()


def test_an_edit_in_the_pim_reaches_every_ready_channel_in_its_locale_and_currency(w: World) -> None:
    w.edit("Organic Tee", price_usd="24.50", price_eur="26.00")
    w.sync()
    amz = w.listing("amz")
    assert amz.title == "Organic Tee" and amz.description == "A good tee"
    assert [b["value"] for b in amz.attributes["bullet_point"]] == ["Soft", "Durable"]
    assert amz.attributes["brand"][0]["value"] == "Acme" and amz.price == Decimal("24.50")
    eb = w.listing("eb")
    assert eb.title == "Organic Tee (de)" and eb.price == Decimal("26.00")  # de_DE and EUR, never a conversion
    assert "<li>Soft</li>" in eb.description  # bullets folded into the description where there is no field
    assert eb.attributes["aspects"]["brand"] == ["Acme"]
    shop = w.listing("shop")
    assert shop.title == "Organic Tee" and shop.price == Decimal("24.50")
    assert w.listing("ml").title == "Organic Tee" and w.listing("ml").price == Decimal("24.50")
    assert w.listing("shop", "TEE-M").title == "Organic Tee"  # every variant of the product
    summary = w.h.sandbox.channel("eb")
    assert summary.spec.currency == "EUR"


def test_a_variant_blocked_by_readiness_errors_gets_no_content_until_it_is_fixed(w: World) -> None:
    # an eBay-only title over eBay's 80 characters: an error on eb only
    long_title = "L" * 100
    w.edit("Renamed Tee", title__eb=long_title)
    w.sync()
    assert w.listing("amz").title == "Renamed Tee" and w.listing("shop").title == "Renamed Tee"
    assert w.listing("eb").title == "Tee (de)"  # nothing published while blocked
    assert len(w.listing("eb").title) < 80
    w.edit("Renamed Tee", title__eb="Kurzes Tee")  # fixed: the held content goes out
    w.sync()
    assert w.listing("eb").title == "Kurzes Tee"


def test_three_edits_before_the_worker_runs_send_one_content_call(w: World) -> None:
    before = {ch: w.content_calls(ch) for ch in ("amz", "eb", "ml")}
    for title in ("Tee 1", "Tee 2", "Tee 3"):
        w.edit(title)
        w.h.relay.drain()
    w.send()
    assert w.listing("amz").title == "Tee 3" and w.listing("eb").title == "Tee 3 (de)"
    # one content write per variant (two variants) on Amazon and eBay; Mercado Libre also puts the description
    assert w.content_calls("amz") - before["amz"] == 2
    ebay_writes = w.content_calls("eb") - before["eb"]
    assert ebay_writes == 2


def test_price_and_content_wait_behind_quantity_and_price_goes_before_content(w: World) -> None:
    w.edit("Later Tee", price_usd="30.00")
    w.h.reserve("TEE-S", 2, "r1")
    w.h.relay.drain()
    due = w.h.store.due("amz", w.h.clock.now_ms(), 100)
    assert [p.field for p in due][:1] == ["quantity"]
    fields = [(p.field, p.priority) for p in due if p.sku == "TEE-S"]
    assert fields == [("quantity", fields[0][1]), (PRICE, P_PRICE), (CONTENT, P_CONTENT)]


def test_walmart_content_is_a_visible_dead_letter_and_its_price_still_goes(w: World) -> None:
    letters = [d for d in w.h.store.dead_letters("wm") if d.field == CONTENT]
    assert letters and letters[0].reason == "unsupported" and "MP_ITEM" in letters[0].error
    assert w.listing("wm").price == Decimal("19.99")
    w.edit("Tee", price_usd="18.00")  # the same content: nothing new is queued; the price goes
    w.sync()
    assert w.listing("wm").price == Decimal("18.00")
    assert len([d for d in w.h.store.dead_letters("wm") if d.field == CONTENT]) == len(letters)


def test_the_sandbox_refuses_a_price_in_another_currency(w: World) -> None:
    async def send(worker: Any) -> Any:
        return await worker.connectors["eb"].update_content(
            [ContentUpdate("TEE-S", price=Decimal("5"), currency="USD")]
        )

    (result,) = w.h.run(send)
    assert not result.ok and w.listing("eb").price == Decimal("21.99")


def test_the_cli_lists_content_dead_letters_and_status(
    w: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ACCORD_CONFIG", raising=False)
    url = w.h.app.db.engine.url.render_as_string(hide_password=False)
    capsys.readouterr()
    assert main(["--database-url", url, "sync", "deadletters", "--channel", "wm", "--json"]) == 0
    letters = json.loads(capsys.readouterr().out)["dead_letters"]
    assert {(d["sku"], d["field"], d["reason"]) for d in letters} == {
        ("TEE-S", "content", "unsupported"),
        ("TEE-M", "content", "unsupported"),
    }
    assert letters[0]["value"]["title"] == "Tee"
    assert main(["--database-url", url, "sync", "status", "--json"]) == 0
    rows = {r["channel"]: r for r in json.loads(capsys.readouterr().out)["channels"]}
    assert rows["wm"]["dead_letters"] == 2 and rows["amz"]["queue_depth"] == 0


def test_a_channel_added_later_gets_the_catalogue_by_sync_content(
    w: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h = w.h
    h.engine.add_channel(Channel("al", "allegro", "eu", "PLN", ("wh",), StockPolicy()))
    h.sandbox.add_channel(ChannelSpec("al", "allegro", [ListingSpec(s, qty=0) for s in SKUS], "PLN"))
    h.store.set_endpoint(channel_config(h.sandbox, "al", BASE), h.clock.now_ms())
    w.pim.set_channel_context(
        "al", country="PL", locales=("en_US",), vat_inclusive=False, packs=(), rules_dialect="shopify"
    )
    monkeypatch.delenv("ACCORD_CONFIG", raising=False)
    url = h.app.db.engine.url.render_as_string(hide_password=False)
    capsys.readouterr()
    assert main(["--database-url", url, "sync", "content", "--product", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err
    assert main(["--database-url", url, "sync", "content", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    # content for both variants on the new channel (no price in PLN), and Walmart's two parked content keys again
    assert done == {"products": 1, "variants": 2, "pending": 4}
    w.send()
    assert w.listing("al").title == "Tee" and w.listing("al", "TEE-M").title == "Tee"
    assert len(h.store.dead_letters("wm")) == 4  # Walmart still cannot take content: parked (and shown) again
    assert main(["--database-url", url, "sync", "content", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pending"] == 2  # only the parked keys: nothing else differs


def test_a_channel_switched_to_another_locale_gets_its_content_again_and_no_other_channel_moves(w: World) -> None:
    assert w.listing("eb").title == "Tee (de)"
    before = {ch: w.content_calls(ch) for ch, *_ in CHANNELS}
    w.pim.set_channel_context(
        "eb", country="DE", locales=("en_US",), vat_inclusive=False, packs=(), rules_dialect="ebay"
    )
    w.sync()
    assert w.listing("eb").title == "Tee" and w.listing("eb", "TEE-M").title == "Tee"  # every variant, in en_US
    assert w.listing("eb").price == Decimal("21.99")  # the channel's currency is unchanged
    after = {ch: w.content_calls(ch) for ch, *_ in CHANNELS}
    assert after["eb"] > before["eb"]
    assert {ch: after[ch] - before[ch] for ch in after if ch != "eb"} == dict.fromkeys(
        [ch for ch, *_ in CHANNELS if ch != "eb"], 0
    )
    # the same context again changes nothing: no event, nothing sent
    w.pim.set_channel_context(
        "eb", country="DE", locales=("en_US",), vat_inclusive=False, packs=(), rules_dialect="ebay"
    )
    w.sync()
    assert w.content_calls("eb") == after["eb"]
