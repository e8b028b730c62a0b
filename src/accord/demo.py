"""The main job on the embedded default: a small world whose stock moves, shown per channel.

Later issues grow this into the simulator comparison (real-time versus 15-minute and 6-hour sync).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from accord.app.relay import StoredEvent
from accord.bootstrap import build_app
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.domain.errors import InsufficientStock
from accord.domain.ledger import Movement, MovementKind
from accord.settings import Settings
from accord.store.db import Tx

K = MovementKind

LOCATIONS = [
    Location("WH-DE-BER", LocationKind.WAREHOUSE, "eu", "DE", "Europe/Berlin"),
    Location("DC-US-NJ", LocationKind.REGIONAL_DC, "us", "US", "America/New_York"),
    Location("DC-SG", LocationKind.REGIONAL_DC, "apac", "SG", "Asia/Singapore"),
    Location("FBA-US", LocationKind.PLATFORM_FC, "us", "US", "America/Los_Angeles", owner_channel="amazon-us"),
    Location("DS-LON-1", LocationKind.DARK_STORE, "uk", "GB", "Europe/London"),
]
CHANNELS = [
    Channel("amazon-us", "amazon", "us", "USD", ("FBA-US", "DC-US-NJ"), StockPolicy(buffer_units=2)),
    Channel("amazon-de", "amazon", "eu", "EUR", ("WH-DE-BER",), StockPolicy(buffer_units=1, zero_at_or_below=2)),
    Channel("zalando-de", "zalando", "eu", "EUR", ("WH-DE-BER",), StockPolicy(pool_pct=50)),
    Channel("shopee-sg", "shopee", "apac", "SGD", ("DC-SG",), StockPolicy(max_qty=20)),
    Channel("shopify-dtc", "shopify", "global", "USD", ("DC-US-NJ", "WH-DE-BER", "DC-SG")),
    Channel("quick-lon", "quickcommerce", "uk", "GBP", ("DS-LON-1",), StockPolicy(zero_at_or_below=1)),
]
SKUS = [
    Sku("TEE-BLK-M", "Organic tee, black, M"),
    Sku("TEE-BLK-L", "Organic tee, black, L"),
    Sku("MUG-12OZ", "Stoneware mug 12 oz"),
    Sku("LAMP-E27", "Desk lamp, E27, energy class F"),
]


class ChannelFeed:
    """A transactional subscriber: counts the availability changes each channel would be sent."""

    name = "demo-channel-feed"
    types = frozenset({"ChannelAvailabilityChanged"})
    transactional = True

    def __init__(self) -> None:
        self.updates: Counter[str] = Counter()
        self.zeroes: Counter[str] = Counter()

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        for change in event.data["changes"]:
            self.updates[change["channel"]] += 1
            if change["new_ats"] == 0:
                self.zeroes[change["channel"]] += 1


def run_demo(path: str, out: Console) -> None:
    db_file = Path(path)
    for suffix in ("", "-wal", "-shm"):
        Path(str(db_file) + suffix).unlink(missing_ok=True)
    feed = ChannelFeed()
    app = build_app(Settings(), database_url=f"sqlite:///{db_file}", subscribers=[feed], migrate=True)
    e = app.engine
    try:
        out.rule("[bold]Accord demo[/bold]: one ledger, six channels")
        for loc in LOCATIONS:
            e.add_location(loc)
        for ch in CHANNELS:
            e.add_channel(ch)
        e.add_skus(SKUS)
        out.print(f"{len(LOCATIONS)} locations, {len(CHANNELS)} channels, {len(SKUS)} SKUs in {db_file}")

        steps: list[tuple[str, list[Movement]]] = [
            ("Pallets arrive", [
                Movement(K.RECEIVE, "TEE-BLK-M", "WH-DE-BER", 40, "po-1-a"),
                Movement(K.RECEIVE, "TEE-BLK-M", "DC-US-NJ", 25, "po-1-b"),
                Movement(K.RECEIVE, "TEE-BLK-M", "FBA-US", 12, "po-1-c"),
                Movement(K.RECEIVE, "TEE-BLK-L", "DC-SG", 30, "po-1-d"),
                Movement(K.RECEIVE, "MUG-12OZ", "DS-LON-1", 6, "po-1-e"),
                Movement(K.RECEIVE, "MUG-12OZ", "WH-DE-BER", 9, "po-1-f"),
                Movement(K.RECEIVE, "LAMP-E27", "DC-US-NJ", 3, "po-1-g"),
            ]),
            ("Orders reserve stock (every channel drops at once)", [
                Movement(K.RESERVE, "TEE-BLK-M", "WH-DE-BER", 5, "ord-1001", ref="amazon-de#1001"),
                Movement(K.RESERVE, "LAMP-E27", "DC-US-NJ", 2, "ord-1002", ref="shopify#1002"),
                Movement(K.RESERVE, "MUG-12OZ", "DS-LON-1", 4, "ord-1003", ref="quick-lon#1003"),
            ]),
            ("Ship two, cancel one", [
                Movement(K.SHIP, "TEE-BLK-M", "WH-DE-BER", 5, "ship-1001", ref="amazon-de#1001"),
                Movement(K.SHIP, "MUG-12OZ", "DS-LON-1", 4, "ship-1003", ref="quick-lon#1003"),
                Movement(K.RELEASE, "LAMP-E27", "DC-US-NJ", 2, "cancel-1002", ref="shopify#1002"),
            ]),
            ("Rebalance: 10 tees Berlin → Singapore, a damaged mug, a returned lamp in quarantine", [
                Movement(K.TRANSFER_OUT, "TEE-BLK-M", "WH-DE-BER", 10, "tr-77", to_location="DC-SG"),
                Movement(K.DAMAGE, "MUG-12OZ", "WH-DE-BER", 1, "dmg-5", reason="dropped in picking"),
                Movement(K.RECEIVE, "LAMP-E27", "DC-US-NJ", 0 + 1, "rma-9-recv"),
                Movement(K.QUARANTINE, "LAMP-E27", "DC-US-NJ", 1, "rma-9-hold", reason="return awaiting inspection"),
            ]),
            ("Transfer arrives in Singapore", [
                Movement(K.TRANSFER_IN, "TEE-BLK-M", "DC-SG", 10, "tr-77-in", transfer_id="tr-77"),
            ]),
        ]  # fmt: skip
        for title, moves in steps:
            e.move_batch(moves)
            out.print(f"• {title}: {len(moves)} movements")

        # a retry of an already applied reservation moves nothing
        replay = e.move(Movement(K.RESERVE, "TEE-BLK-M", "WH-DE-BER", 5, "ord-1001", ref="amazon-de#1001"))
        out.print(f"• Retried order 1001 with the same key: replayed={replay.replayed}, nothing moved")
        try:
            e.move(Movement(K.RESERVE, "LAMP-E27", "DC-US-NJ", 5, "ord-1004"))
        except InsufficientStock as exc:
            out.print(f"• Oversell refused: {exc}")

        report = app.relay.drain()
        out.print(f"• Relay delivered {report.delivered} availability events to the channel feed")

        table = Table(title="Available to sell per channel", show_lines=False)
        table.add_column("SKU")
        for ch in CHANNELS:
            table.add_column(ch.id, justify="right")
        for sku in SKUS:
            ats = e.ats(sku.id)
            table.add_row(sku.id, *(str(ats[ch.id]) for ch in CHANNELS))
        out.print(table)

        bal = Table(title="Balances", show_lines=False)
        for col in ("SKU", "location", "on_hand", "committed", "in_transit", "damaged", "quarantine", "available"):
            bal.add_column(col, justify="left" if col in ("SKU", "location") else "right")
        for sku_id, loc_id, b in e.balances():
            bal.add_row(sku_id, loc_id, *(str(v) for v in b.as_tuple()), str(b.available))
        out.print(bal)

        feed_table = Table(title="Updates the channel feed received", show_lines=False)
        feed_table.add_column("channel")
        feed_table.add_column("availability updates", justify="right")
        feed_table.add_column("of which drops to 0", justify="right")
        for ch in CHANNELS:
            feed_table.add_row(ch.id, str(feed.updates[ch.id]), str(feed.zeroes[ch.id]))
        out.print(feed_table)

        problems = e.verify()
        verdict = (
            "[green]ledger replay matches balances[/green]"
            if not problems
            else f"[red]{len(problems)} mismatches[/red]"
        )
        out.print(f"verify: {verdict}")
        out.print(f"Explore: ACCORD_DATABASE_URL=sqlite:///{db_file} accord events tail -n 30")
    finally:
        app.close()
