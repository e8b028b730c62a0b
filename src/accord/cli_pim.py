"""PIM commands: ``accord product|readiness|pim|family|attribute ...`` and ``accord bench catalog``.

Registered from ``accord.cli`` with ``register(cli)``; heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from accord.pim.service import Pim

product_cli = typer.Typer(help="Products and variants (each variant is a ledger SKU): show, edit, history, revert.")
pim_cli = typer.Typer(help="PIM: import/export CSV & XLSX, locales, categories, channel context, full recompute.")
family_cli = typer.Typer(help="Families: which attributes a kind of product has.")
attribute_cli = typer.Typer(help="Typed attributes.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ActorOpt = Annotated[str, typer.Option("--actor", help="Who made the change (recorded in history).")]


@contextmanager
def _pim() -> Iterator[Pim]:
    from accord.cli import _app
    from accord.pim.service import Pim

    with _app() as app:
        yield Pim(app.db, app.engine)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _out() -> Any:
    from accord.cli import out

    return out


# ---------------------------------------------------------------------------------------------- product


@product_cli.command("show")
def product_show(sku: Annotated[str, typer.Argument(help="Product or variant id.")]) -> None:
    """Print a product (the one containing SKU) as JSON."""
    from accord.pim.codec import product_to_json

    with _pim() as pim:
        prod, version = pim.get_product(sku)
        _print_json(product_to_json(prod, pim.state().catalog, version))


@product_cli.command("put")
def product_put(
    file: Annotated[Path, typer.Argument(help="JSON document of one product (see `accord product show`).")],
    actor: ActorOpt = "cli",
) -> None:
    """Create or replace a whole product from JSON."""
    from accord.domain.errors import InvalidInput
    from accord.pim.codec import product_from_json

    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{file}: {exc}") from None
    with _pim() as pim:
        res = pim.upsert_product(product_from_json(doc, pim.state().catalog), actor)
    _out().print(f"product {res.product}: version {res.version}" + ("" if res.changed else " (unchanged)"))


@product_cli.command("set")
def product_set(
    sku: Annotated[str, typer.Argument(help="Node id (product, model or variant) to set the value on.")],
    attribute: Annotated[str, typer.Argument()],
    value: Annotated[str, typer.Argument(help="Cell syntax of docs/pim-import.md; '' removes the value.")],
    locale: Annotated[str | None, typer.Option("--locale")] = None,
    channel: Annotated[str | None, typer.Option("--channel")] = None,
    currency: Annotated[str | None, typer.Option("--currency", help="For a price: the currency of VALUE.")] = None,
    actor: ActorOpt = "cli",
) -> None:
    """Set one value; readiness is updated in the same transaction."""
    from accord.domain.pim import Money, ValueKey
    from accord.pim.io import parse_cell

    with _pim() as pim:
        prod, _ = pim.get_product(sku)
        cat = pim.state().catalog
        attr = cat.family(prod.family).attr(attribute)
        key = ValueKey(attribute, locale, channel)
        node = prod.node(sku)
        if currency is not None:
            from decimal import Decimal, InvalidOperation

            from accord.domain.errors import InvalidInput

            cur = node.values.get(key)
            prices = {m.currency: m for m in cur if isinstance(m, Money)} if isinstance(cur, tuple) else {}
            if value:
                try:
                    prices[currency] = Money(Decimal(value), currency)
                except InvalidOperation:
                    raise InvalidInput(f"{value!r} is not an amount") from None
            else:
                prices.pop(currency, None)
            new_val: Any = tuple(prices.values()) or None
        else:
            new_val = parse_cell(attr, value, cat.units) if value else None
        res = pim.upsert_product(prod.with_node(node.with_value(key, new_val)), actor)
    _out().print(f"product {res.product}: version {res.version}; {res.readiness_changed} readiness rows changed")


@product_cli.command("history")
def product_history(sku: Annotated[str, typer.Argument()], as_json: JsonOpt = False) -> None:
    """Every change: who, when, attribute, old → new, version."""
    from datetime import UTC, datetime

    from rich.table import Table

    with _pim() as pim:
        rows = pim.history(sku)
    if as_json:
        _print_json(rows)
        return
    table = Table("ver", "when (UTC)", "who", "node", "attribute", "old", "new")
    for r in rows:
        when = datetime.fromtimestamp(r["at_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        where = "-".join(x for x in (r["attribute"], r["locale"], r["channel"]) if x)
        table.add_row(str(r["version"]), when, r["actor"], r["node"], where, _short(r["old"]), _short(r["new"]))
    _out().print(table)


def _short(v: object) -> str:
    s = "—" if v is None else json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return s if len(s) <= 60 else s[:57] + "..."


@product_cli.command("revert")
def product_revert(
    sku: Annotated[str, typer.Argument()],
    version: Annotated[int, typer.Argument(help="Version to go back to (see history).")],
    actor: ActorOpt = "cli",
) -> None:
    """Put the product's values back as they were at VERSION (recorded as a new version)."""
    with _pim() as pim:
        res = pim.revert(sku, version, actor)
    _out().print(f"product {res.product}: reverted to v{version} as version {res.version}")


# ---------------------------------------------------------------------------------------------- readiness


def readiness(
    sku: Annotated[str, typer.Argument(help="Variant/product id, or `summary` for the per-channel summary.")],
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Readiness of a variant per channel × locale (`accord readiness summary` for ready/blocked counts)."""
    from rich.table import Table

    with _pim() as pim:
        if sku == "summary":
            rows = pim.summary(channel)
            if as_json:
                _print_json(rows)
                return
            table = Table("channel", "variants", "ready", "blocked", "top issues")
            for r in rows:
                top = ", ".join(f"{i['issue']} ×{i['rows']}" for i in r["top_issues"])
                table.add_row(r["channel"], str(r["variants"]), str(r["ready"]), str(r["blocked"]), top)
            _out().print(table)
            return
        data = pim.readiness(sku, channel)
    if as_json:
        _print_json(data)
        return
    table = Table("sku", "channel", "locale", "ready", "score", "issues")
    for r in data:
        issues = "; ".join(f"[{i['severity']}] {i['code']} {i['attribute'] or ''}: {i['message']}" for i in r["issues"])
        table.add_row(r["sku"], r["channel"], r["locale"], "yes" if r["ready"] else "NO", str(r["score"]), issues)
    _out().print(table)


# ---------------------------------------------------------------------------------------------- pim


@pim_cli.command("import")
def pim_import(
    file: Annotated[Path, typer.Argument(help=".csv or .xlsx (column convention: docs/pim-import.md)")],
    allow_errors: Annotated[bool, typer.Option("--allow-errors", help="Exit 0 even when rows failed.")] = False,
    errors_out: Annotated[
        Path | None, typer.Option("--errors-out", help="Error report (default FILE.errors.csv).")
    ] = None,
    actor: ActorOpt = "import",
    chunk_rows: Annotated[int, typer.Option(help="Rows per transaction.", min=1, max=100_000)] = 1000,
) -> None:
    """Import products and variants: upsert by SKU, idempotent, invalid rows to an error report."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    from accord.domain.errors import InvalidInput
    from accord.pim.io import import_file

    if not file.is_file():
        raise InvalidInput(f"no such file: {file}")
    progress = Progress(
        TextColumn(f"importing {file.name}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress, _pim() as pim:
        task = progress.add_task("import", total=None)
        report = import_file(
            pim,
            file,
            errors_out=errors_out,
            actor=actor,
            chunk_rows=chunk_rows,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    _out().print(report.line(), soft_wrap=True)
    if report.failed and not allow_errors:
        raise typer.Exit(1)


@pim_cli.command("export")
def pim_export(file: Annotated[Path, typer.Argument(help=".csv or .xlsx")]) -> None:
    """Export every product and variant in the import format (formula-like cells escaped)."""
    from accord.pim.io import export_file

    with _pim() as pim:
        n = export_file(pim, file)
    _out().print(f"exported {n} rows to {file}")


@pim_cli.command("recompute")
def pim_recompute(as_json: JsonOpt = False) -> None:
    """Full readiness recompute (writes only rows that changed)."""
    with _pim() as pim:
        res = pim.recompute()
    _print_json(res) if as_json else _out().print(", ".join(f"{k} {v}" for k, v in res.items()))


@pim_cli.command("locale")
def pim_locale(
    code: Annotated[str, typer.Argument(help="e.g. de_DE")],
    fallback: Annotated[str | None, typer.Option("--fallback")] = None,
) -> None:
    """Add or change a locale."""
    from accord.domain.pim import Locale

    with _pim() as pim:
        pim.set_locales([Locale(code, fallback)])
    _out().print(f"locale {code} saved")


@pim_cli.command("category")
def pim_category(
    code: Annotated[str, typer.Argument()],
    parent: Annotated[str | None, typer.Option("--parent")] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Comma-separated, e.g. energy_label.")] = None,
) -> None:
    """Add or change a category (readiness of the variants in it is updated)."""
    from accord.domain.pim import Category

    with _pim() as pim:
        pim.set_category(Category(code, parent, {}, frozenset(_csv(tags))))
    _out().print(f"category {code} saved")


@pim_cli.command("channel")
def pim_channel(
    channel_id: Annotated[str, typer.Argument(help="A channel added with `accord channel add`.")],
    country: Annotated[str, typer.Option("--country", help="ISO 3166 alpha-2, e.g. DE.")],
    locales: Annotated[str, typer.Option("--locales", help="Comma-separated, e.g. de_DE,en_GB.")],
    vat_inclusive: Annotated[bool, typer.Option("--vat-inclusive/--no-vat-inclusive")] = False,
    packs: Annotated[str | None, typer.Option("--packs", help="Explicit compliance packs (default: by scope).")] = None,
    rules_dialect: Annotated[str | None, typer.Option("--rules-dialect", help="Rule file (default: dialect).")] = None,
) -> None:
    """Set a channel's PIM context; its readiness rows are updated in the same transaction."""
    with _pim() as pim:
        ctx = pim.set_channel_context(
            channel_id,
            country=country,
            locales=_csv(locales),
            vat_inclusive=vat_inclusive,
            packs=None if packs is None else _csv(packs),
            rules_dialect=rules_dialect,
        )
    _out().print(f"channel {ctx.id}: {ctx.dialect} rules, {ctx.country}, locales {', '.join(ctx.locales)}")


@pim_cli.command("channels")
def pim_channels(as_json: JsonOpt = False) -> None:
    """List channel PIM contexts."""
    with _pim() as pim:
        rows = [
            {"id": c.id, "dialect": c.dialect, "region": c.region, "country": c.country, "currency": c.currency,
             "locales": list(c.locales), "vat_inclusive": c.vat_inclusive, "packs": c.packs}
            for c in pim.channels()
        ]  # fmt: skip
    _print_json(rows)


# ---------------------------------------------------------------------------------------------- families


@family_cli.command("set")
def family_set(
    code: Annotated[str, typer.Argument()],
    attributes: Annotated[str, typer.Option("--attributes", help="Comma-separated attribute codes.")],
) -> None:
    """Create or change a family (readiness of its variants is updated)."""
    with _pim() as pim:
        pim.set_family(code, _csv(attributes))
    _out().print(f"family {code} saved")


@family_cli.command("list")
def family_list() -> None:
    with _pim() as pim:
        fams = pim.state().catalog.families
        _print_json({code: [a.code for a in f.attributes] for code, f in sorted(fams.items())})


@attribute_cli.command("set")
def attribute_set(
    code: Annotated[str, typer.Argument()],
    type_: Annotated[str, typer.Option("--type", help="text, localized_text, price, gtin, asset, ...")],
    localizable: Annotated[bool, typer.Option("--localizable")] = False,
    scopable: Annotated[bool, typer.Option("--scopable", help="Channel-specific values allowed.")] = False,
    required: Annotated[str | None, typer.Option("--required", help="Channels: ids, dialect:<d> or *.")] = None,
    options: Annotated[str | None, typer.Option("--options", help="Select option codes.")] = None,
    dimension: Annotated[str | None, typer.Option("--dimension", help="Number unit dimension, e.g. mass.")] = None,
    asset_kind: Annotated[str | None, typer.Option("--asset-kind", help="image | document")] = None,
    max_chars: Annotated[int | None, typer.Option("--max-chars")] = None,
) -> None:
    """Create or change an attribute definition."""
    from accord.pim.codec import attribute_from_json

    attr = attribute_from_json(
        {
            "code": code,
            "type": type_,
            "localizable": localizable or type_ == "localized_text",
            "scopable": scopable,
            "required_channels": _csv(required),
            "options": _csv(options),
            "dimension": dimension,
            "asset_kind": asset_kind,
            "max_chars": max_chars,
        }
    )
    with _pim() as pim:
        pim.set_attribute(attr)
    _out().print(f"attribute {code} saved")


@attribute_cli.command("list")
def attribute_list() -> None:
    from accord.pim.codec import attribute_to_json

    with _pim() as pim:
        _print_json([attribute_to_json(a) for a in pim.attributes()])


# ---------------------------------------------------------------------------------------------- rules

rules_cli = typer.Typer(help="Channel rule dialects and compliance packs as files (TOML/JSON), stored in the database.")
pim_cli.add_typer(rules_cli, name="rules", no_args_is_help=True)


@rules_cli.command("add")
def rules_add(
    file: Annotated[Path, typer.Argument(help="A dialect or pack rule file, .toml or .json.")],
    actor: ActorOpt = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Add or replace a rule file; the readiness of the channels it applies to is recomputed at once."""
    with _pim() as pim:
        res = pim.add_ruleset_file(file, actor)
    if as_json:
        _print_json(res)
    elif not res["changed"]:
        _out().print(f"{res['kind']} {res['name']}: unchanged")
    else:
        _out().print(
            f"{res['kind']} {res['name']} saved ({res['rules']} rules); "
            f"{res['readiness_changed']} readiness rows changed"
        )


@rules_cli.command("list")
def rules_list(as_json: JsonOpt = False) -> None:
    """Every dialect and pack in force, built-in or stored."""
    with _pim() as pim:
        data = pim.rulesets()
    if as_json:
        _print_json(data)
        return
    from rich.table import Table

    table = Table("kind", "name", "origin", "rules", "scope", "source")
    for r in data:
        origin = r["origin"] + (" (replaces built-in)" if r["replaces_builtin"] else "")
        scope = ",".join(r["countries"] + r["regions"]) or "-"
        table.add_row(r["kind"], r["name"], origin, str(r["rules"]), scope, r["source"])
    _out().print(table)


@rules_cli.command("remove")
def rules_remove(
    kind: Annotated[str, typer.Argument(help="dialect or pack")],
    name: Annotated[str, typer.Argument(help="The rule set's name.")],
    actor: ActorOpt = "cli",
) -> None:
    """Remove a stored rule file (a built-in one of the same name applies again)."""
    with _pim() as pim:
        res = pim.remove_ruleset(kind, name, actor)
    _out().print(f"{res['kind']} {res['name']} removed; {res['readiness_changed']} readiness rows changed")


# ---------------------------------------------------------------------------------------------- bench


def bench_catalog(
    as_json: JsonOpt = False,
    variants: Annotated[int, typer.Option("--variants", help="Variants to generate.", min=100)] = 100_000,
    channels: Annotated[int, typer.Option("--channels", help="Channels.", min=1, max=64)] = 32,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: a temporary SQLite file.")
    ] = None,
) -> None:
    """Catalogue speed: import, full readiness, one edit, export, peak RSS (JSON)."""
    from accord.pim.bench import run_catalog_bench

    result = run_catalog_bench(variants=variants, channels=channels, database_url=database_url, progress=not as_json)
    _print_json(result)


def register(cli: typer.Typer) -> None:
    """Add the PIM commands to the root ``accord`` app."""
    cli.add_typer(product_cli, name="product", no_args_is_help=True)
    cli.add_typer(pim_cli, name="pim", no_args_is_help=True)
    cli.add_typer(family_cli, name="family", no_args_is_help=True)
    cli.add_typer(attribute_cli, name="attribute", no_args_is_help=True)
    cli.command("readiness")(readiness)
    for group in cli.registered_groups:
        if group.name == "bench" and group.typer_instance is not None:
            group.typer_instance.command("catalog")(bench_catalog)
            break
    else:
        bench = typer.Typer(help="Measure speed.")
        bench.command("catalog")(bench_catalog)
        cli.add_typer(bench, name="bench", no_args_is_help=True)
