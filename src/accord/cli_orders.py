"""``accord order …``, ``accord rma …`` and ``accord bench routing`` (orders, routing and returns, issue 5)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli import JsonOpt, _app, _print_json, bench_cli, cli, out
from accord.domain.errors import InvalidInput
from accord.domain.orders import CancelReason, SlaPolicy
from accord.domain.returns import Grade, Payer, ReturnPolicy, ReturnReason
from accord.orders import Destination, OrderService, PlaceLine, PlaceOrder, ReturnService
from accord.orders.service import health_dict, parse_time, sla_dict

order_cli = typer.Typer(help="Orders: place, route, ship, deliver, cancel, refund, explain; SLA and channel health.")
rma_cli = typer.Typer(help="Returns (RMAs): create under the region's policy, receive, grade, refund.")
cli.add_typer(order_cli, name="order", no_args_is_help=True)
cli.add_typer(rma_cli, name="rma", no_args_is_help=True)


def _enum_value(kind: Any, value: str, flag: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(m.value for m in kind)
        raise InvalidInput(f"{flag} must be one of {options}, got {value!r}") from None


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number, got {value!r}") from None


def _parse_line(spec: str, n: int) -> PlaceLine:
    """``SKU:QTY`` or ``SKU:QTY:UNIT_PRICE_MINOR``."""
    parts = spec.rsplit(":", 2) if spec.count(":") >= 2 else spec.rsplit(":", 1)
    if len(parts) < 2 or not parts[0]:
        raise InvalidInput(f"--line must be SKU:QTY or SKU:QTY:PRICE_MINOR, got {spec!r}")
    price = _int(parts[2], f"price on line {n}") if len(parts) == 3 else 0
    return PlaceLine(parts[0], _int(parts[1], f"quantity on line {n}"), str(n), price)


def _parse_items(specs: list[str]) -> dict[str, int]:
    items: dict[str, int] = {}
    for spec in specs:
        sku, sep, qty = spec.rpartition(":")
        if not sep or not sku:
            raise InvalidInput(f"--item must be SKU:QTY, got {spec!r}")
        items[sku] = items.get(sku, 0) + _int(qty, f"quantity of {sku}")
    return items


def _print_order(d: dict[str, Any]) -> None:
    out.print(f"order {d['id']} on {d['channel']}: {d['status']} (ship by {d['ship_by']})")
    if d.get("hold_reason"):
        out.print(f"held: {d['hold_reason']} (fix it, then `accord order release {d['id']}`)", markup=False)
    table = Table("line", "sku", "qty", "location", "reserved", "shipped")
    by_line: dict[str, list[dict[str, Any]]] = {}
    for a in d["allocations"]:
        by_line.setdefault(a["line_id"], []).append(a)
    for ln in d["lines"]:
        allocs = by_line.get(ln["line_id"]) or [{"location": "-", "qty_reserved": 0, "qty_shipped": 0}]
        for a in allocs:
            table.add_row(
                ln["line_id"], ln["sku"], str(ln["qty"]), a["location"], str(a["qty_reserved"]), str(a["qty_shipped"])
            )
    out.print(table)
    for s in d["shipments"]:
        out.print(f"shipment {s['id']} from {s['location']}: {s['carrier']} {s['tracking']} ({s['confirm_state']})")
    money = d.get("refund")
    if money and money["state"] != "none":
        unit = f"minor units of {money['currency']}" if money["currency"] else "minor units"
        out.print(
            f"refund {money['state']}: {money['refunded_minor']} refunded, {money['pending_minor']} pending "
            f"of {money['paid_minor']} paid ({unit})"
        )


def _show(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(d)
    else:
        _print_order(d)


# ---------------------------------------------------------------------------------------------- orders

LineOpt = Annotated[list[str], typer.Option("--line", help="SKU:QTY[:UNIT_PRICE_MINOR]; repeat per line.")]


@order_cli.command("place")
def order_place(
    channel: Annotated[str, typer.Option("--channel", help="Channel the order was placed on.")],
    line: LineOpt,
    order_id: Annotated[str | None, typer.Option("--id", help="Order id (default: generated).")] = None,
    ship_by: Annotated[str | None, typer.Option("--ship-by", help="Channel ship-by (ISO 8601 or epoch ms).")] = None,
    dest_region: Annotated[str | None, typer.Option("--dest-region", help="Destination region.")] = None,
    dest_lat: Annotated[float | None, typer.Option("--dest-lat", help="Destination latitude.")] = None,
    dest_lon: Annotated[float | None, typer.Option("--dest-lon", help="Destination longitude.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Place an order: reserve its stock at once, then route it."""
    lines = tuple(_parse_line(spec, i + 1) for i, spec in enumerate(line))
    dest = None
    if dest_lat is not None or dest_lon is not None:
        if dest_lat is None or dest_lon is None or not dest_region:
            raise InvalidInput("--dest-lat, --dest-lon and --dest-region go together")
        dest = Destination(dest_region, dest_lat, dest_lon)
    cmd = PlaceOrder(channel, lines, order_id, None, parse_time(ship_by) if ship_by else None, dest)
    with _app() as app:
        d = OrderService(app.engine).place(cmd)
    _show(d, as_json)


IdArg = Annotated[str, typer.Argument(help="Order id.")]


@order_cli.command("show")
def order_show(order_id: IdArg, as_json: JsonOpt = False) -> None:
    """An order: status, lines, reservations, shipments."""
    with _app() as app:
        _show(OrderService(app.engine).show(order_id), as_json)


@order_cli.command("list")
def order_list(
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    status: Annotated[str | None, typer.Option("--status")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Orders, oldest first."""
    with _app() as app:
        rows = OrderService(app.engine).list_orders(channel, status, limit)
    if as_json:
        _print_json({"orders": rows})
        return
    table = Table("id", "channel", "status", "placed_at", "ship_by", "held because")
    for r in rows:
        table.add_row(
            r["id"], r["channel"], r["status"], str(r["placed_at"]), str(r["ship_by"]), r["hold_reason"] or ""
        )
    out.print(table)


@order_cli.command("route")
def order_route(
    order_id: IdArg,
    failed: Annotated[
        str | None, typer.Option("--failed-location", help="Re-route the units this location failed to ship.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Route an order again (or re-route away from a location that failed to ship)."""
    with _app() as app:
        svc = OrderService(app.engine)
        d = svc.reroute(order_id, failed) if failed else svc.route(order_id)
    _show(d, as_json)


@order_cli.command("release")
def order_release(order_id: IdArg, as_json: JsonOpt = False) -> None:
    """Release a held order once its cause is fixed (SKU added, channel configured): reserve and route it."""
    with _app() as app:
        _show(OrderService(app.engine).release(order_id), as_json)


@order_cli.command("reoptimise")
def order_reoptimise(
    limit: Annotated[int, typer.Option("--limit", help="At most this many orders, soonest ship-by first.")] = 2000,
) -> None:
    """Re-optimise routed, unreleased orders together against current stock (run after stock changes)."""
    with _app() as app:
        _print_json(OrderService(app.engine).reoptimise(limit))


@order_cli.command("ship")
def order_ship(
    order_id: IdArg,
    location: Annotated[str, typer.Option("--location", help="Location the parcel left.")],
    carrier: Annotated[str, typer.Option("--carrier")],
    tracking: Annotated[str, typer.Option("--tracking")],
    line: Annotated[list[str] | None, typer.Option("--line", help="LINE_ID:QTY; default: all reserved there.")] = None,
    shipment_id: Annotated[str | None, typer.Option("--shipment-id")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a shipment (ledger SHIP, carrier + tracking, ship confirmation queued for the channel)."""
    lines = _parse_items(line) if line else None
    with _app() as app:
        d = OrderService(app.engine).ship(order_id, location, carrier, tracking, lines, shipment_id)
    _show(d, as_json)


@order_cli.command("deliver")
def order_deliver(order_id: IdArg, as_json: JsonOpt = False) -> None:
    """Mark an order delivered."""
    with _app() as app:
        _show(OrderService(app.engine).deliver(order_id), as_json)


@order_cli.command("cancel")
def order_cancel(
    order_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="seller | buyer | channel")] = "seller",
    as_json: JsonOpt = False,
) -> None:
    """Cancel what has not shipped; its reservations are released."""
    r = _enum_value(CancelReason, reason, "--reason")
    with _app() as app:
        _show(OrderService(app.engine).cancel(order_id, r), as_json)


@order_cli.command("refund")
def order_refund(
    order_id: IdArg,
    amount: Annotated[
        int | None, typer.Option("--amount-minor", help="Minor units; default: all that is left of what was paid.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Refund an order (it becomes refunded); never more than its lines were paid."""
    with _app() as app:
        _show(OrderService(app.engine).refund(order_id, amount), as_json)


@order_cli.command("explain")
def order_explain(order_id: IdArg) -> None:
    """Why each line went where it went."""
    with _app() as app:
        text = OrderService(app.engine).explain(order_id)
    out.print(text, soft_wrap=True, markup=False)


@order_cli.command("health")
def order_health(
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Orders placed since (ISO 8601 or epoch ms).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancellation, late-shipment and valid-tracking rates per channel against Amazon's bars."""
    with _app() as app:
        rows = [health_dict(h) for h in OrderService(app.engine).health(channel, parse_time(since) if since else None)]
    if as_json:
        _print_json({"channels": rows})
        return
    table = Table("channel", "orders", "metric", "value %", "bar", "ok")
    for r in rows:
        for name, m in r["metrics"].items():
            value = "-" if m["value_pct"] is None else f"{m['value_pct']:.2f}"
            table.add_row(r["channel"], str(r["orders"]), name, value, m["bar"], "yes" if m["ok"] else "NO")
    out.print(table)


@order_cli.command("sla")
def order_sla(
    at: Annotated[str | None, typer.Option("--at", help="Evaluate at this time (default: now).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Orders at risk of missing, or past, their ship-by; raises one alert event per order and state."""
    with _app() as app:
        rows = [sla_dict(a) for a in OrderService(app.engine).sla(parse_time(at) if at else None)]
    if as_json:
        _print_json({"alerts": rows})
        return
    table = Table("order", "state", "ship_by", "remaining s")
    for r in rows:
        table.add_row(r["order_id"], r["state"], str(r["ship_by"]), str(r["remaining_s"]))
    out.print(table)


@order_cli.command("sla-policy")
def order_sla_policy(
    channel: Annotated[str, typer.Argument()],
    handling_hours: Annotated[int, typer.Option("--handling-hours")] = 24,
    at_risk_hours: Annotated[int, typer.Option("--at-risk-hours")] = 4,
) -> None:
    """Set a channel's ship-by policy (used when the channel sends no ship-by)."""
    with _app() as app:
        OrderService(app.engine).set_sla_policy(channel, SlaPolicy(handling_hours, at_risk_hours))
    out.print(f"SLA policy of {channel}: ship within {handling_hours} h, at risk {at_risk_hours} h before")


@order_cli.command("geo")
def order_geo(
    location: Annotated[str, typer.Argument()],
    lat: Annotated[float, typer.Option("--lat")],
    lon: Annotated[float, typer.Option("--lon")],
    handling_days: Annotated[float, typer.Option("--handling-days")] = 1.0,
    radius_km: Annotated[float | None, typer.Option("--radius-km", help="Dark stores: delivery radius.")] = None,
) -> None:
    """Set a location's coordinates and handling time for routing."""
    with _app() as app:
        OrderService(app.engine).set_location_geo(location, lat, lon, handling_days, radius_km)
    out.print(f"routing geography of {location} set")


@order_cli.command("capacity")
def order_capacity(
    location: Annotated[str | None, typer.Argument(help="Location id (all locations when omitted).")] = None,
    per_day: Annotated[
        int | None, typer.Option("--per-day", help="Parcels the location can ship per local day (a positive number).")
    ] = None,
    unlimited: Annotated[bool, typer.Option("--unlimited", help="Remove the location's capacity.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show, or set, a location's daily shipping capacity: routing moves orders away from a full location when a
    parcel there would miss its SLA."""
    if per_day is not None and unlimited:
        raise InvalidInput("give either --per-day or --unlimited, not both")
    with _app() as app:
        svc = OrderService(app.engine)
        if per_day is not None or unlimited:
            if location is None:
                raise InvalidInput("name the location whose capacity to set")
            rows = [svc.set_location_capacity(location, None if unlimited else per_day)]
        else:
            rows = svc.capacity(location)
    if as_json:
        _print_json({"locations": rows})
        return
    table = Table("location", "parcels/day", "waiting", "shipped today", "left today", "next parcel slips")
    for r in rows:
        cap = "unlimited" if r["parcels_per_day"] is None else str(r["parcels_per_day"])
        left = "-" if r["left_today"] is None else str(r["left_today"])
        table.add_row(
            r["location"], cap, str(r["open_parcels"]), str(r["shipped_today"]), left, f"{r['next_parcel_slip_days']} d"
        )
    out.print(table)


# ---------------------------------------------------------------------------------------------- returns

RmaArg = Annotated[str, typer.Argument(help="RMA id.")]


def _print_rma(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(d)
        return
    out.print(
        f"RMA {d['id']} for order {d['order_id']} ({d['policy']['name']}): {d['status']}, refund {d['refund_state']}"
        f" ({d['refund_due_minor']} due, {d['refunded_minor']} refunded, minor units {d['currency'] or '-'})"
    )
    table = Table("sku", "requested", "received", "location", "graded", "awaiting grade")
    for ln in d["lines"]:
        graded = ", ".join(f"{g} {q}" for g, q in ln["graded"].items()) or "-"
        table.add_row(
            ln["sku"],
            str(ln["qty_requested"]),
            str(ln["qty_received"]),
            ln["location"] or "-",
            graded,
            str(ln["awaiting_grade"]),
        )
    out.print(table)


@rma_cli.command("create")
def rma_create(
    order_id: Annotated[str, typer.Argument(help="Order id.")],
    item: Annotated[list[str], typer.Option("--item", help="SKU:QTY; repeat per SKU.")],
    reason: Annotated[str, typer.Option("--reason")] = "changed_mind",
    rma_id: Annotated[str | None, typer.Option("--id")] = None,
    requested_at: Annotated[str | None, typer.Option("--requested-at", help="ISO 8601 or epoch ms.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Open an RMA; the region's return policy is enforced (a rejection names the rule)."""
    r = _enum_value(ReturnReason, reason, "--reason")
    items = _parse_items(item)
    with _app() as app:
        d = ReturnService(app.engine).create(
            order_id, items, r, rma_id, parse_time(requested_at) if requested_at else None
        )
    _print_rma(d, as_json)


@rma_cli.command("receive")
def rma_receive(
    rma_id: RmaArg,
    sku: Annotated[str, typer.Option("--sku")],
    qty: Annotated[int, typer.Option("--qty")],
    location: Annotated[str, typer.Option("--location")],
    as_json: JsonOpt = False,
) -> None:
    """Units arrived: into quarantine at the location (not sellable until graded)."""
    with _app() as app:
        _print_rma(ReturnService(app.engine).receive(rma_id, sku, qty, location), as_json)


@rma_cli.command("grade")
def rma_grade(
    rma_id: RmaArg,
    sku: Annotated[str, typer.Option("--sku")],
    qty: Annotated[int, typer.Option("--qty")],
    grade: Annotated[str, typer.Option("--grade", help="resellable | refurbish | damaged | scrap")],
    as_json: JsonOpt = False,
) -> None:
    """Inspect and grade received units; the ledger moves them where the grade says."""
    g = _enum_value(Grade, grade, "--grade")
    with _app() as app:
        _print_rma(ReturnService(app.engine).grade(rma_id, sku, qty, g), as_json)


@rma_cli.command("release")
def rma_release(
    rma_id: RmaArg,
    sku: Annotated[str, typer.Option("--sku")],
    qty: Annotated[int, typer.Option("--qty")],
    as_json: JsonOpt = False,
) -> None:
    """Refurbished units are sellable again (quarantine → on hand)."""
    with _app() as app:
        _print_rma(ReturnService(app.engine).release(rma_id, sku, qty), as_json)


@rma_cli.command("refund")
def rma_refund(
    rma_id: RmaArg,
    amount: Annotated[int | None, typer.Option("--amount-minor", help="Default: the amount due.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record the refund of a graded RMA."""
    with _app() as app:
        _print_rma(ReturnService(app.engine).refund(rma_id, amount), as_json)


@rma_cli.command("show")
def rma_show(rma_id: RmaArg, as_json: JsonOpt = False) -> None:
    """An RMA: lines, receipts, grades and refund state."""
    with _app() as app:
        _print_rma(ReturnService(app.engine).show(rma_id), as_json)


@rma_cli.command("policy")
def rma_policy(
    region: Annotated[str, typer.Argument()],
    name: Annotated[str, typer.Option("--name")],
    window_days: Annotated[int, typer.Option("--window-days")],
    paid_by: Annotated[str, typer.Option("--return-shipping-paid-by", help="buyer | seller")] = "seller",
    restocking_fee_pct: Annotated[int, typer.Option("--restocking-fee-pct")] = 0,
    label_cost_minor: Annotated[int, typer.Option("--label-cost-minor")] = 0,
    refund_on_request: Annotated[
        bool, typer.Option("--refund-on-request", help="Refund before the units come back (returnless).")
    ] = False,
) -> None:
    """Set a region's return policy."""
    p = ReturnPolicy(
        name,
        region,
        window_days,
        _enum_value(Payer, paid_by, "--return-shipping-paid-by"),
        restocking_fee_pct,
        label_cost_minor,
        not refund_on_request,
    )
    with _app() as app:
        ReturnService(app.engine).set_policy(p)
    out.print(f"return policy {name!r} for region {region}: {window_days} days")


# ---------------------------------------------------------------------------------------------- bench


@bench_cli.command("routing")
def bench_routing(
    as_json: JsonOpt = False,
    orders: Annotated[int, typer.Option("--orders", help="Orders to route.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    mip_sample: Annotated[int, typer.Option("--mip-sample", help="Orders compared with the exact MIP.")] = 500,
) -> None:
    """Route synthetic multi-line orders (12 locations, 5 regions); compare with the naive rule and the MIP."""
    from accord.routing.bench import run_routing_bench

    if orders <= 0 or mip_sample < 0:
        raise InvalidInput("--orders must be positive and --mip-sample zero or more")
    result = run_routing_bench(orders=orders, seed=seed, mip_sample=mip_sample)
    if as_json:
        _print_json(result)
        return
    table = Table("figure", "value")
    for k, v in result.items():
        table.add_row(k, str(v))
    out.print(table)
