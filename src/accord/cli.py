"""The ``accord`` command line. Bad input exits with code 2 and one line on stderr saying what is wrong."""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.table import Table

from accord.bootstrap import App, build_app
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.domain.catalog import Sku
from accord.domain.errors import AccordError, InvalidInput
from accord.domain.ledger import BUCKETS, Movement, MovementKind
from accord.settings import load_settings

# tables are wide: when the output is not a terminal (pipes, CI logs) do not squeeze them into 80 columns
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

cli = typer.Typer(
    name="accord",
    help="Accord: one system of record and one event-driven engine for catalogue, stock, channels and orders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
location_cli = typer.Typer(help="Stock locations: warehouses, stores, dark stores, regional DCs, platform FCs.")
channel_cli = typer.Typer(help="Sales channels and their stock policies.")
sku_cli = typer.Typer(help="SKUs (the PIM grows these into products and variants).")
stock_cli = typer.Typer(help="Move stock. Every movement takes --key (idempotency key) and --json.")
events_cli = typer.Typer(help="The outbox: events written with every change.")
token_cli = typer.Typer(help="API bearer tokens.")
relay_cli = typer.Typer(help="Deliver outbox events to subscribers.")
bench_cli = typer.Typer(help="Measure speed; prints JSON with a baseline measured in the same run.")
for sub, name in (
    (location_cli, "location"),
    (channel_cli, "channel"),
    (sku_cli, "sku"),
    (stock_cli, "stock"),
    (events_cli, "events"),
    (token_cli, "token"),
    (relay_cli, "relay"),
    (bench_cli, "bench"),
):
    cli.add_typer(sub, name=name, no_args_is_help=True)

T = TypeVar("T")

DbOpt = Annotated[
    str | None, typer.Option("--database-url", envvar="ACCORD_DATABASE_URL", help="Database URL (default: settings).")
]
KeyOpt = Annotated[str | None, typer.Option("--key", help="Idempotency key; a retry with the same key moves nothing.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class _State:
    database_url: str | None = None


STATE = _State()


@cli.callback()
def _root(database_url: DbOpt = None) -> None:
    STATE.database_url = database_url


@contextmanager
def _app(migrate: bool = False) -> Iterator[App]:
    app = build_app(load_settings(), database_url=STATE.database_url, migrate=migrate)
    try:
        yield app
    finally:
        app.close()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")


# ---------------------------------------------------------------------------------------------- init


@cli.command()
def init() -> None:
    """Create or upgrade the database schema."""
    from accord.store.migrate import current

    with _app(migrate=True) as app:
        revs = ", ".join(current(app.db))
        out.print(f"database ready at revision {revs}: {app.db.engine.url.render_as_string()}")


# ---------------------------------------------------------------------------------------------- locations


@location_cli.command("add")
def location_add(
    location_id: Annotated[str, typer.Argument(help="Location id, e.g. WH-DE-1.")],
    kind: Annotated[str, typer.Option(help="warehouse | store | dark_store | regional_dc | platform_fc")],
    region: Annotated[str, typer.Option(help="Region, e.g. eu, us, apac.")],
    country: Annotated[str, typer.Option(help="ISO country code, e.g. DE.")],
    timezone: Annotated[str, typer.Option(help="IANA timezone.")] = "UTC",
    owner_channel: Annotated[str | None, typer.Option(help="For platform_fc: the channel holding the stock.")] = None,
) -> None:
    """Add a location."""
    loc = Location(location_id, _enum(LocationKind, kind, "--kind"), region, country, timezone, owner_channel)
    with _app() as app:
        app.engine.add_location(loc)
    out.print(f"added location {location_id}")


@location_cli.command("list")
def location_list(as_json: JsonOpt = False) -> None:
    """List locations."""
    with _app() as app:
        cfg = app.engine.config()
    rows = [
        {"id": loc.id, "kind": loc.kind.value, "region": loc.region, "country": loc.country,
         "timezone": loc.timezone, "owner_channel": loc.owner_channel}
        for loc in cfg.locations.values()
    ]  # fmt: skip
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "kind", "region", "country", "timezone", "owner channel", title="Locations")
    for r in rows:
        table.add_row(*(str(v or "") for v in r.values()))
    out.print(table)


# ---------------------------------------------------------------------------------------------- channels


def _policy(
    buffer: int | None, max_qty: int | None, pool_pct: int | None, zero_at: int | None, base: StockPolicy
) -> StockPolicy:
    return StockPolicy(
        buffer_units=base.buffer_units if buffer is None else buffer,
        max_qty=base.max_qty if max_qty is None else (None if max_qty < 0 else max_qty),
        pool_pct=base.pool_pct if pool_pct is None else pool_pct,
        zero_at_or_below=base.zero_at_or_below if zero_at is None else zero_at,
    )


BufferOpt = Annotated[int | None, typer.Option("--buffer", help="Units held back from the pool.")]
MaxOpt = Annotated[int | None, typer.Option("--max-qty", help="Never show more than this (-1: no cap).")]
PctOpt = Annotated[int | None, typer.Option("--pool-pct", help="Percent of the pool offered (0-100).")]
ZeroOpt = Annotated[int | None, typer.Option("--zero-at", help="Send 0 when ATS is at or below this.")]


@channel_cli.command("add")
def channel_add(
    channel_id: Annotated[str, typer.Argument(help="Channel id, e.g. amazon-us.")],
    dialect: Annotated[str, typer.Option(help="Connector dialect, e.g. amazon, shopify, ebay.")],
    region: Annotated[str, typer.Option(help="Region, e.g. us.")],
    currency: Annotated[str, typer.Option(help="ISO currency, e.g. USD.")],
    locations: Annotated[str, typer.Option(help="Fulfilling locations in priority order, comma separated.")],
    buffer: BufferOpt = None,
    max_qty: MaxOpt = None,
    pool_pct: PctOpt = None,
    zero_at: ZeroOpt = None,
) -> None:
    """Add a channel with its fulfilling locations and stock policy."""
    policy = _policy(buffer, max_qty, pool_pct, zero_at, StockPolicy())
    ch = Channel(channel_id, dialect, region, currency, _csv(locations), policy)
    with _app() as app:
        app.engine.add_channel(ch)
    out.print(f"added channel {channel_id}")


@channel_cli.command("update")
def channel_update(
    channel_id: Annotated[str, typer.Argument()],
    locations: Annotated[str | None, typer.Option(help="New fulfilling locations, comma separated.")] = None,
    buffer: BufferOpt = None,
    max_qty: MaxOpt = None,
    pool_pct: PctOpt = None,
    zero_at: ZeroOpt = None,
) -> None:
    """Change a channel's policy or locations; its ATS is recomputed at once."""
    with _app() as app:
        cfg = app.engine.config()
        ch = cfg.channels.get(channel_id)
        if ch is None:
            raise AccordError(f"unknown channel {channel_id!r}")
        policy = _policy(buffer, max_qty, pool_pct, zero_at, ch.policy)
        app.engine.update_channel(channel_id, policy=policy, locations=_csv(locations) if locations else None)
    out.print(f"updated channel {channel_id}")


@channel_cli.command("list")
def channel_list(as_json: JsonOpt = False) -> None:
    """List channels."""
    from accord.app.engine import channel_dict

    with _app() as app:
        cfg = app.engine.config()
    rows = [channel_dict(ch) for ch in cfg.channels.values()]
    if as_json:
        _print_json(rows)
        return
    table = Table(
        "id", "dialect", "region", "currency", "locations", "buffer", "max", "pool %", "zero at", title="Channels"
    )
    for r in rows:
        p = r["policy"]
        table.add_row(
            r["id"], r["dialect"], r["region"], r["currency"], ", ".join(r["locations"]),
            str(p["buffer_units"]), "-" if p["max_qty"] is None else str(p["max_qty"]),
            str(p["pool_pct"]), str(p["zero_at_or_below"]),
        )  # fmt: skip
    out.print(table)


@channel_cli.command("show")
def channel_show(channel_id: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Show one channel."""
    from accord.app.engine import channel_dict

    with _app() as app:
        ch = app.engine.config().channels.get(channel_id)
    if ch is None:
        raise AccordError(f"unknown channel {channel_id!r}")
    data = channel_dict(ch)
    if as_json:
        _print_json(data)
        return
    for k, v in data.items():
        out.print(f"[bold]{k}[/bold]: {v}")


# ---------------------------------------------------------------------------------------------- skus


@sku_cli.command("add")
def sku_add(sku_id: Annotated[str, typer.Argument()], title: Annotated[str, typer.Option(help="Title.")] = "") -> None:
    """Add a SKU."""
    with _app() as app:
        created = app.engine.add_sku(Sku(sku_id, title))
    out.print(f"added SKU {sku_id}" if created else f"SKU {sku_id} already exists (unchanged)")


@sku_cli.command("list")
def sku_list(
    after: Annotated[str, typer.Option(help="Start after this SKU id.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """List SKUs."""
    with _app() as app:
        items = app.engine.skus(after=after, limit=limit)
    if as_json:
        _print_json([{"id": s.id, "title": s.title} for s in items])
        return
    table = Table("sku", "title", title="SKUs")
    for s in items:
        table.add_row(s.id, s.title)
    out.print(table)


# ---------------------------------------------------------------------------------------------- stock


def _move(m: Movement, as_json: bool) -> None:
    with _app() as app:
        result = app.engine.move(m)
    if as_json:
        _print_json(result.as_dict())
        return
    if result.replayed:
        out.print(f"already applied under key {result.key} (nothing moved)")
        return
    out.print(f"{result.kind} {result.qty} × {result.sku} at {result.location} (key {result.key})")
    for loc, b in result.balances.items():
        out.print(f"  {loc}: " + "  ".join(f"{n}={v}" for n, v in zip(BUCKETS, b.as_tuple(), strict=True)))
    for c in result.ats_changes:
        out.print(f"  ATS {c.channel}: {c.old} → {c.new}")


def _key(key: str | None) -> str:
    return key or f"cli-{uuid.uuid4().hex}"


SkuArg = Annotated[str, typer.Argument(help="SKU.")]
LocArg = Annotated[str, typer.Argument(help="Location.")]
QtyArg = Annotated[int, typer.Argument(help="Quantity (whole units).")]
RefOpt = Annotated[str | None, typer.Option("--ref", help="Order, RMA or document reference.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the ledger).")]


def _simple(kind: MovementKind, doc: str) -> Callable[..., None]:
    def command(
        sku: SkuArg, location: LocArg, qty: QtyArg, key: KeyOpt = None, ref: RefOpt = None,
        reason: ReasonOpt = None, as_json: JsonOpt = False,
    ) -> None:  # fmt: skip
        _move(Movement(kind, sku, location, qty, _key(key), reason=reason, ref=ref), as_json)

    command.__doc__ = doc
    return command


for _kind, _name, _doc in (
    (MovementKind.RECEIVE, "receive", "Receive units into on_hand."),
    (MovementKind.RESERVE, "reserve", "Reserve available units (committed)."),
    (MovementKind.RELEASE, "release", "Release a reservation."),
    (MovementKind.SHIP, "ship", "Ship committed units (leaves on_hand and committed)."),
    (MovementKind.DAMAGE, "damage", "Mark available units damaged."),
    (MovementKind.QUARANTINE, "quarantine", "Move available units into quarantine."),
    (MovementKind.UNQUARANTINE, "unquarantine", "Release units from quarantine back to on_hand."),
):
    stock_cli.command(_name)(_simple(_kind, _doc))


@stock_cli.command("adjust")
def stock_adjust(
    sku: SkuArg,
    location: LocArg,
    by: Annotated[int, typer.Option("--by", help="Signed change to on_hand, e.g. --by -3.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")],
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Adjust on_hand by a signed amount, with a reason."""
    _move(Movement(MovementKind.ADJUST, sku, location, by, _key(key), reason=reason), as_json)


@stock_cli.command("count")
def stock_count(
    sku: SkuArg,
    location: LocArg,
    counted: Annotated[int, typer.Argument(help="Units physically counted.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the ledger).")] = "cycle count",
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a physical count: on_hand becomes the counted quantity."""
    _move(Movement(MovementKind.COUNT, sku, location, counted, _key(key), reason=reason), as_json)


@stock_cli.command("scrap")
def stock_scrap(
    sku: SkuArg,
    location: LocArg,
    qty: QtyArg,
    source: Annotated[str, typer.Option("--from", help="damaged | quarantine | on_hand")] = "damaged",
    reason: ReasonOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Scrap units (from damaged by default)."""
    _move(Movement(MovementKind.SCRAP, sku, location, qty, _key(key), reason=reason, source_bucket=source), as_json)


@stock_cli.command("transfer")
def stock_transfer(
    sku: SkuArg,
    source: Annotated[str, typer.Argument(help="From location.")],
    destination: Annotated[str, typer.Argument(help="To location.")],
    qty: QtyArg,
    transfer_id: Annotated[str | None, typer.Option("--transfer-id", help="Transfer id (default: the key).")] = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ship a transfer: units leave the source and are in transit to the destination."""
    m = Movement(
        MovementKind.TRANSFER_OUT, sku, source, qty, _key(key), to_location=destination, transfer_id=transfer_id
    )
    _move(m, as_json)


@stock_cli.command("transfer-in")
def stock_transfer_in(
    transfer_id: Annotated[str, typer.Argument(help="Transfer id.")],
    qty: QtyArg,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Receive (part of) a transfer at its destination."""
    with _app() as app:
        tr = app.engine.transfer(transfer_id)
    m = Movement(MovementKind.TRANSFER_IN, tr["sku_id"], tr["to_location"], qty, _key(key), transfer_id=transfer_id)
    _move(m, as_json)


@stock_cli.command("transfers")
def stock_transfers(open_only: Annotated[bool, typer.Option("--open")] = False, as_json: JsonOpt = False) -> None:
    """List transfers."""
    with _app() as app:
        rows = app.engine.transfers(open_only=open_only)
    if as_json:
        _print_json(rows)
        return
    table = Table("id", "sku", "from", "to", "shipped", "received", title="Transfers")
    for r in rows:
        table.add_row(
            r["id"], r["sku_id"], r["from_location"], r["to_location"], str(r["qty_shipped"]), str(r["qty_received"])
        )
    out.print(table)


@stock_cli.command("show")
def stock_show(
    sku: Annotated[str | None, typer.Argument(help="SKU (all when omitted).")] = None,
    location: Annotated[str | None, typer.Option("--location")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show balances per SKU × location."""
    with _app() as app:
        rows = app.engine.balances(sku, location)
    if as_json:
        _print_json(
            [{"sku": s, "location": loc, **dict(zip(BUCKETS, b.as_tuple(), strict=True)), "available": b.available}
             for s, loc, b in rows]
        )  # fmt: skip
        return
    table = Table("sku", "location", *BUCKETS, "available", title="Balances")
    for s, loc, b in rows:
        table.add_row(s, loc, *(str(v) for v in b.as_tuple()), str(b.available))
    out.print(table)


# ---------------------------------------------------------------------------------------------- ats


@cli.command("ats")
def ats(
    sku: SkuArg,
    channel: Annotated[str | None, typer.Option("--channel", help="One channel only.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Available-to-sell of a SKU per channel."""
    with _app() as app:
        values = app.engine.ats(sku, channel)
    if as_json:
        _print_json({"sku": sku, "ats": values})
        return
    table = Table("channel", "ATS", title=f"Available to sell: {sku}")
    for ch, q in values.items():
        table.add_row(ch, str(q))
    out.print(table)


@cli.command("recompute-ats")
def recompute_ats(channel: Annotated[str | None, typer.Option("--channel")] = None) -> None:
    """Recompute ATS from balances for all channels (or one); prints how many values changed."""
    with _app() as app:
        n = app.engine.recompute_ats(channel)
    out.print(f"recomputed ATS: {n} values changed")


# ---------------------------------------------------------------------------------------------- events & relay


def _event_row(e: Any) -> list[str]:
    data = json.dumps(e.data, separators=(",", ":"))
    return [str(e.id), time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.created_at / 1000)), e.type, e.key, data]


@events_cli.command("tail")
def events_tail(
    n: Annotated[int, typer.Option("-n", help="How many of the latest events.", min=1, max=10_000)] = 20,
    event_type: Annotated[list[str] | None, typer.Option("--type", help="Only these event types.")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show the latest outbox events."""
    from accord.app.relay import fetch_events, last_event_ids

    with _app() as app:
        after = last_event_ids(app.db, n) if not event_type else 0
        events = fetch_events(app.db, after=after, limit=10_000, types=event_type)[-n:]
        while True:
            for e in events:
                if as_json:
                    sys.stdout.write(json.dumps(e.as_dict()) + "\n")
                else:
                    out.print("  ".join(_event_row(e)), soft_wrap=True)
            if events:
                after = events[-1].id
            if not follow:
                return
            sys.stdout.flush()
            time.sleep(0.5)
            events = fetch_events(app.db, after=after, limit=1000, types=event_type)


deadletters_cli = typer.Typer(
    help="Events a subscriber could not handle after every retry.", invoke_without_command=True
)
cli.add_typer(deadletters_cli, name="deadletters")


@deadletters_cli.callback()
def deadletters(
    ctx: typer.Context,
    subscriber: Annotated[str | None, typer.Option("--subscriber")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List dead letters (use `deadletters redrive SUBSCRIBER EVENT_ID` to deliver one again)."""
    if ctx.invoked_subcommand is not None:
        return
    from accord.app.relay import dead_letters

    with _app() as app:
        rows = dead_letters(app.db, subscriber)
    if as_json:
        _print_json([r.__dict__ if hasattr(r, "__dict__") else _dl(r) for r in rows])
        return
    if not rows:
        out.print("no dead letters")
        return
    table = Table("subscriber", "event", "type", "key", "attempts", "last error", title="Dead letters")
    for r in rows:
        table.add_row(r.subscriber, str(r.event_id), r.event_type, r.key, str(r.attempts), r.last_error)
    out.print(table)


def _dl(r: Any) -> dict[str, Any]:
    return {
        "subscriber": r.subscriber, "event_id": r.event_id, "type": r.event_type, "key": r.key,
        "attempts": r.attempts, "last_error": r.last_error, "updated_at": r.updated_at,
    }  # fmt: skip


@deadletters_cli.command("redrive")
def deadletters_redrive(
    subscriber: Annotated[str, typer.Argument()], event_id: Annotated[int, typer.Argument()]
) -> None:
    """Deliver one dead letter again now."""
    with _app() as app:
        ok = app.relay.redrive(subscriber, event_id)
    if not ok:
        err.print(f"redrive of event {event_id} to {subscriber} failed again; it stays a dead letter")
        raise typer.Exit(1)
    out.print(f"event {event_id} delivered to {subscriber}")


@relay_cli.command("run")
def relay_run(once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False) -> None:
    """Run the relay worker (delivers outbox events to configured subscribers)."""
    with _app() as app:
        if not app.subscribers:
            out.print("no subscribers configured (add [[webhooks]] to accord.toml); nothing to deliver")
            return
        if once:
            r = app.relay.drain()
            out.print(f"delivered {r.delivered}, skipped {r.skipped}, failed {r.failed}, dead {r.dead}")
            return
        stop = threading.Event()
        out.print(f"relay running for {', '.join(s.name for s in app.subscribers)}; Ctrl-C to stop")
        try:
            app.relay.run_forever(stop)
        except KeyboardInterrupt:
            stop.set()


# ---------------------------------------------------------------------------------------------- verify


@cli.command()
def verify(as_json: JsonOpt = False) -> None:
    """Replay the ledger and compare it with balances, transfers and ATS. Exit 1 on any difference."""
    with _app() as app:
        problems = app.engine.verify()
    if as_json:
        _print_json({"ok": not problems, "mismatches": [p.__repr__() for p in problems]})
    elif not problems:
        out.print("ledger replay matches balances, transfers and ATS")
    else:
        table = Table("what", "sku", "where", "expected", "actual", title=f"{len(problems)} mismatches")
        for p in problems:
            table.add_row(p.what, p.sku, p.where, p.expected, p.actual)
        out.print(table)
    if problems:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------- tokens


@token_cli.command("create")
def token_create(name: Annotated[str, typer.Option("--name", help="Who or what uses the token.")]) -> None:
    """Create an API token; it is printed once and only its hash is stored."""
    from accord.app.tokens import create_token

    with _app() as app:
        token = create_token(app.db, name)
    sys.stdout.write(token + "\n")


@token_cli.command("list")
def token_list() -> None:
    """List token names."""
    from accord.app.tokens import list_tokens

    with _app() as app:
        for name, created in list_tokens(app.db):
            out.print(f"{name}  created {time.strftime('%Y-%m-%d %H:%M', time.gmtime(created / 1000))}")


@token_cli.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a token."""
    from accord.app.tokens import revoke_token

    with _app() as app:
        revoke_token(app.db, name)
    out.print(f"revoked token {name}")


# ---------------------------------------------------------------------------------------------- serve


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8400).")] = None,
    relay: Annotated[bool, typer.Option(help="Also run the relay worker in this process.")] = True,
) -> None:
    """Serve the HTTP API (and the relay worker, plus the channel-sync worker when endpoints are configured)."""
    import uvicorn

    from accord.api.app import create_app

    with _app(migrate=True) as app:
        stop = threading.Event()
        worker = None
        if relay and app.subscribers:
            worker = threading.Thread(target=app.relay.run_forever, args=(stop,), name="relay", daemon=True)
            worker.start()
        sync_worker = app.start_sync_worker(stop) if relay else None  # channel sync, when endpoints are configured
        try:
            uvicorn.run(
                create_app(app),
                host=host or app.settings.api_host,
                port=port or app.settings.api_port,
                log_level="info",
            )
        finally:
            stop.set()
            if worker is not None:
                worker.join(timeout=5)
            if sync_worker is not None:
                sync_worker.join(timeout=5)


# ---------------------------------------------------------------------------------------------- bench & demo


@bench_cli.command("ledger")
def bench_ledger(
    as_json: JsonOpt = False,
    database_url: Annotated[str | None, typer.Option("--database-url", help="Measure on this database.")] = None,
    movements: Annotated[int, typer.Option(help="Movements per measurement.", min=1000, max=2_000_000)] = 200_000,
) -> None:
    """Ledger ingest and ATS lookup speed against a raw sqlite3 ceiling."""
    from accord.bench import run_ledger_bench

    result = run_ledger_bench(
        database_url=database_url or STATE.database_url, movements=movements, progress=not as_json
    )
    _print_json(result)


@cli.command()
def demo(
    path: Annotated[str, typer.Option("--dir", help="Folder for the demo databases and report.")] = "accord-demo",
    days: Annotated[int, typer.Option("--days", help="Simulated days.", min=1, max=90)] = 14,
    seed: Annotated[int, typer.Option("--seed", help="World and demand seed.")] = 42,
    ledger: Annotated[bool, typer.Option("--ledger", help="Only the quick ledger walkthrough.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Afterwards, serve the API and the sandbox with the real-time run's state.")
    ] = False,
) -> None:
    """The main job: a walkthrough of one ledger, then the same brand simulated under real-time, 15-minute and
    6-hour sync, with a comparison table and a self-contained HTML report."""
    from pathlib import Path

    from accord.demo import run_demo

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    run_demo(str(folder / "ledger-walkthrough.db"), out)
    if ledger:
        return
    from accord.sim.compare import run_demo_comparison
    from accord.sim.runner import Simulation

    keep: dict[str, Simulation] = {}
    run_demo_comparison(folder, out, days=days, seed=seed, keep=keep)
    if serve:  # the API on the real-time run's database and the sandbox as that run left it (issue 6)
        from accord.sim.serve import serve_run

        sim = keep["realtime"]
        serve_run(sim.database_url, sim.sandbox_app, out)


# ---------------------------------------------------------------------------------------------- helpers


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _enum(enum: type[T], value: str, where: str) -> T:
    try:
        return enum(value)  # type: ignore[call-arg]
    except ValueError:
        choices = ", ".join(str(e.value) for e in enum)  # type: ignore[attr-defined]
        raise InvalidInput(f"{where}: {value!r} is not one of {choices}") from None


def _db_error_line(exc: Exception) -> str | None:
    text = str(exc)
    if "no such table" in text or "UndefinedTable" in type(exc).__name__ or "does not exist" in text:
        return "database not initialised: run `accord init` first"
    if "unable to open database" in text or "Connection refused" in text or "connection failed" in text:
        return f"cannot open the database: {text.splitlines()[0]}"
    return None


# typer >= 0.24 vendors click (``typer._click``): its Exit, Abort and usage errors are not click's classes
_EXITS: tuple[type[BaseException], ...] = (click.exceptions.Exit, typer.Exit)
_ABORTS: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)
_CLICK_ERRORS: tuple[type[Exception], ...] = (
    click.ClickException,
    getattr(typer, "TyperException", click.ClickException),
)


def main(argv: list[str] | None = None) -> int:
    """Entry point. Returns the exit code (0 ok, 1 a check failed, 2 bad input)."""
    try:
        rv = cli(args=argv, standalone_mode=False, prog_name="accord")
    except _EXITS as exc:
        return int(getattr(exc, "exit_code", 1))
    except _ABORTS:
        err.print("aborted")
        return 130
    except _CLICK_ERRORS as exc:
        ctx = getattr(exc, "ctx", None)
        where = f" ({ctx.command_path})" if ctx is not None else ""
        err.print(f"error{where}: {getattr(exc, 'format_message', exc.__str__)()}", soft_wrap=True)
        return int(getattr(exc, "exit_code", 2))
    except AccordError as exc:
        err.print(f"error: {exc}", soft_wrap=True)
        return 2
    except Exception as exc:
        line = _db_error_line(exc)
        if line is None:
            raise
        err.print(f"error: {line}", soft_wrap=True)
        return 2
    # standalone_mode=False: a command's ``raise typer.Exit(n)`` comes back as the return value
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


from accord import cli_sync as _cli_sync  # noqa: E402, F401  (channel sync commands, issue 4)
from accord.cli_pim import register as _register_pim  # noqa: E402  (PIM commands, issue 3)

_register_pim(cli)
from accord import cli_orders as _cli_orders  # noqa: E402, F401  (orders, routing and returns, issue 5)
from accord.cli_sim import register as _register_sim  # noqa: E402  (simulator commands, issue 6)

_register_sim(cli)
