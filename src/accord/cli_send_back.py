"""``accord sync shipments`` and ``accord sync cancellations``: what goes back to the channels after an order —
ship confirmations and cancellations — listed by channel and state (pending, sent, dead; and covered: a later
parcel on a channel that keeps one tracking number per order), and redriven."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli import JsonOpt, _app, _print_json, out
from accord.cli_sync import sync_cli
from accord.orders.shipments import ShipmentOutbox
from accord.sync.cancellations import STATES, CancelQueue

ChannelOpt = Annotated[str | None, typer.Option("--channel", help="One channel; all when absent.")]
StateOpt = Annotated[str | None, typer.Option("--state", help=f"One state: {', '.join(STATES)}.")]
LimitOpt = Annotated[int, typer.Option("--limit", help="At most this many rows.", min=1, max=100_000)]
RedriveOpt = Annotated[bool, typer.Option("--redrive", help="Put dead rows back to pending (due now), then list.")]


def _show(rows: list[dict[str, Any]], key: str, id_col: str, redriven: int | None, as_json: bool) -> None:
    if as_json:
        data: dict[str, Any] = {key: rows}
        if redriven is not None:
            data["redriven"] = redriven
        _print_json(data)
        return
    if redriven is not None:
        out.print(f"redriven: {redriven}")
    table = Table("channel", id_col, "channel order", "state", "attempts", "last error")
    for r in rows:
        table.add_row(
            r["channel"],
            str(r.get(id_col, "")),
            r["channel_order_id"],
            r["state"],
            str(r["attempts"]),
            (r["last_error"] or "")[:80],
        )
    out.print(table)


@sync_cli.command("shipments")
def sync_shipments(
    channel: ChannelOpt = None,
    state: StateOpt = None,
    limit: LimitOpt = 1000,
    redrive: RedriveOpt = False,
    shipment: Annotated[str | None, typer.Option("--shipment", help="With --redrive: only this shipment.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ship confirmations going back to the channels: pending, sent or dead (with the marketplace's answer)."""
    with _app() as app:
        outbox = ShipmentOutbox(app.db)
        redriven = outbox.redrive(channel, shipment, app.engine.clock.now_ms()) if redrive else None
        rows = [r.as_dict() for r in outbox.list(channel, state, limit)]
    for r in rows:
        r["shipment"] = r["shipment_id"]
    _show(rows, "shipments", "shipment", redriven, as_json)


@sync_cli.command("cancellations")
def sync_cancellations(
    channel: ChannelOpt = None,
    state: StateOpt = None,
    limit: LimitOpt = 1000,
    redrive: RedriveOpt = False,
    order: Annotated[str | None, typer.Option("--order", help="With --redrive: only this channel order.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Order cancellations going back to the channels: pending, sent or dead (with the marketplace's answer)."""
    with _app() as app:
        queue = CancelQueue(app.db)
        redriven = queue.redrive(channel, order, app.engine.clock.now_ms()) if redrive else None
        rows = [r.as_dict() for r in queue.list(channel, state, limit)]
    for r in rows:
        r["reason"] = r["reason"] or ""
    _show(rows, "cancellations", "reason", redriven, as_json)
