"""Generic file-feed dialect: quantities and content written as CSV files into a drop directory (SFTP/OneDrive
synced folders, EDI gateways, small regional marketplaces that import spreadsheets).

Files are written atomically: a temporary file in the same directory, flushed and fsynced, then ``os.replace``d to
``<channel>-<kind>-<now_ms>-<seq>.csv`` so a reader never sees a partial file. Orders are read from CSV files in an
optional inbox directory (columns ``order_id,created_at,status,sku,qty,unit_price,currency``; one row per line);
the cursor is the last file name processed. Reads of channel quantities are not possible with a one-way feed.
Ship confirmations and cancellations go out as ``<channel>-shipment-<shipment id>.csv`` and
``<channel>-cancellation-<order id>.csv``: named by their own id, so a resend replaces the file, never doubles it.

Config: options ``drop_dir`` (required), ``inbox_dir`` (optional). ``base_url`` is informational (``file://...``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from accord.app.ports import Clock, SystemClock
from accord.connectors.base import (
    CancelReason,
    ChannelConfig,
    ChannelOrder,
    ContentUpdate,
    ItemResult,
    ItemStatus,
    Limits,
    OrderLine,
    OrdersPage,
    QuantitySnapshot,
    QuantityUpdate,
    RequestRejected,
    ShipmentConfirmation,
    TransportError,
    UnsupportedOperation,
    iso_from_ms,
    limits_for,
    money,
    ms_from_datetime,
    parse_iso,
)

SHIPMENT_COLUMNS = (
    "order_id", "shipment_id", "carrier", "tracking", "shipped_at", "sku", "qty", "line_id", "ship_from",
)  # fmt: skip
CANCELLATION_COLUMNS = ("order_id", "reason", "note")


def _safe(value: str) -> str:
    """A file-name-safe, collision-free spelling of an id: readable characters kept, plus a short hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", value)[:80]
    return f"{readable}-{hashlib.sha256(value.encode()).hexdigest()[:10]}"


def write_atomic(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        target = directory / name
        os.replace(tmp, target)
        return target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FileFeedConnector:
    dialect = "filefeed"
    one_tracking_per_order = False

    def __init__(self, config: ChannelConfig, *, limits: Limits | None = None, clock: Clock | None = None) -> None:
        if config.dialect != self.dialect:
            raise ValueError(f"channel {config.channel_id} is {config.dialect!r}, not {self.dialect!r}")
        self.config = config
        self.limits = limits or limits_for(self.dialect)
        self.clock: Clock = clock or SystemClock()
        self.drop_dir = Path(config.options["drop_dir"])
        inbox = config.options.get("inbox_dir")
        self.inbox_dir = Path(inbox) if inbox else None
        self._seq = itertools.count(1)

    def _write(self, kind: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        name = f"{self.config.channel_id}-{kind}-{self.clock.now_ms()}-{next(self._seq):06d}.csv"
        try:
            return write_atomic(self.drop_dir, name, buf.getvalue().encode("utf-8"))
        except OSError as exc:
            raise TransportError(f"cannot write {name} to {self.drop_dir}: {exc}") from exc

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        if not items:
            return []
        bad = [i for i in items if i.qty < 0]
        good = [i for i in items if i.qty >= 0]
        if good:
            self._write("inventory", ["sku", "quantity"], [[i.sku, i.qty] for i in good])
        return [
            ItemResult(i.sku, ItemStatus.REJECTED, "invalid", "negative quantity")
            if i in bad
            else ItemResult(i.sku, ItemStatus.OK)
            for i in items
        ]

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        if not items:
            return []
        rows = [
            [i.sku, i.title or "", i.description or "", "" if i.price is None else str(i.price), i.currency or ""]
            for i in items
        ]
        self._write("content", ["sku", "title", "description", "price", "currency"], rows)
        return [ItemResult(i.sku, ItemStatus.OK) for i in items]

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        raise UnsupportedOperation("a file feed cannot be read back")

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        if self.inbox_dir is None or not self.inbox_dir.is_dir():
            return OrdersPage([], cursor)
        files = sorted(p for p in self.inbox_dir.glob("*.csv") if cursor is None or p.name > cursor)
        if not files:
            return OrdersPage([], cursor)
        path = files[0]  # one file per page
        grouped: dict[str, list[dict[str, str]]] = {}
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                grouped.setdefault(row["order_id"], []).append(row)
        orders = [
            ChannelOrder(
                channel_order_id=order_id,
                created_at=parse_iso(rows[0]["created_at"]),
                status=rows[0].get("status") or "new",
                lines=tuple(OrderLine(r["sku"], int(r["qty"]), money(r.get("unit_price"))) for r in rows),
                currency=rows[0].get("currency") or None,
            )
            for order_id, rows in grouped.items()
        ]
        return OrdersPage(orders, path.name)

    def _write_named(self, name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        try:
            return write_atomic(self.drop_dir, name, buf.getvalue().encode("utf-8"))
        except OSError as exc:
            raise TransportError(f"cannot write {name} to {self.drop_dir}: {exc}") from exc

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """``<channel>-shipment-<shipment id>.csv``, one row per line. The name is the shipment's, so a resend
        replaces the same file (idempotent) instead of adding a second confirmation."""
        if not shipment.lines:
            raise RequestRejected(f"shipment {shipment.shipment_id} has no lines")
        shipped = iso_from_ms(ms_from_datetime(shipment.shipped_at))
        rows = [
            [
                shipment.channel_order_id,
                shipment.shipment_id,
                shipment.carrier,
                shipment.tracking,
                shipped,
                line.sku,
                line.qty,
                line.line_id or "",
                shipment.ship_from_location or "",
            ]
            for line in shipment.lines
        ]
        self._write_named(
            f"{self.config.channel_id}-shipment-{_safe(shipment.shipment_id)}.csv",
            SHIPMENT_COLUMNS,
            rows,
        )

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """``<channel>-cancellation-<order id>.csv`` (order_id, reason, note); a resend replaces the same file."""
        self._write_named(
            f"{self.config.channel_id}-cancellation-{_safe(channel_order_id)}.csv",
            CANCELLATION_COLUMNS,
            [[channel_order_id, reason.value, note]],
        )

    async def aclose(self) -> None:
        return None
