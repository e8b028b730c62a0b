"""CSV and XLSX import/export of products and variants.

Column convention (one row per node: a product, an intermediate model or a variant; see docs/pim-import.md)
------------------------------------------------------------------------------------------------------------
* ``sku`` (required): the node id. A root's id is the product id; leaves are variants = ledger SKUs.
* ``parent``: the parent node id; empty for a product (root). Parents come before their children.
* ``family``: the family code; required for a new product, ignored-if-equal on variants.
* ``axes``: comma-separated attribute codes that tell this node's children apart (e.g. ``size``).
* ``categories``: comma-separated category codes.
* ``<attribute>``, ``<attribute>-<locale>``, ``<attribute>-<channel>``, ``<attribute>-<locale>-<channel>``:
  a value, e.g. ``brand``, ``title-en_US``, ``description-de_DE-amazon-de``.
* ``<price attribute>-<CUR>[-<channel>]``: one amount per currency, e.g. ``price-EUR``, ``price-USD-amazon-us``.

Cells: text as is; lists (text_list, multi_select) ``a|b|c``; numbers ``12.5`` or ``0.2 kg``; booleans
``true``/``false`` (also yes/no/1/0); dates ``2026-01-31``; assets ``uri;mime/type;1600x1200`` (size optional),
asset lists separated by ``|``. Only the columns present are managed: an empty cell removes that value from the
node, a missing column leaves it alone. A cell starting with ``'`` followed by ``= + - @`` is the exported form
of a value starting with that character (formula-injection escape) and is read back without the ``'``.

Import is streaming: rows are read one at a time and applied in chunks (one transaction per chunk, never split
inside a product), so memory stays flat except for a set of 64-bit hashes of the SKUs seen (duplicate check).
Upsert by SKU and idempotent: a row equal to what is stored writes nothing (no history, no events). Invalid
rows go to an error report (CSV: the original cells plus an ``error`` column ``line N: reason``).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from accord.domain.errors import AccordError, InvalidInput
from accord.domain.pim import (
    AssetRef,
    AttributeDef,
    AttributeType,
    Money,
    Product,
    ProductNode,
    Value,
    ValueKey,
    gtin_problem,
)
from accord.domain.pim.attributes import check_currency
from accord.pim.codec import canonical, canonical_product, same_product
from accord.pim.service import Pim, PimState
from accord.store import pim_tables as pt
from accord.store.db import Tx

RESERVED = ("sku", "parent", "family", "axes", "categories")
CHUNK_ROWS = 1000
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BAD_UTF8 = re.compile("[\udc80-\udcff]")
_LIST_TYPES = (AttributeType.TEXT_LIST, AttributeType.MULTI_SELECT)

Progress = Callable[[int, int], None]  # (done, total) in the unit the reader reports (bytes or rows)


@dataclass(frozen=True, slots=True)
class Column:
    index: int
    header: str
    attribute: AttributeDef | None = None  # None: a reserved column
    locale: str | None = None
    channel: str | None = None
    currency: str | None = None
    key: ValueKey | None = None  # the value key the column writes (attribute columns)


@dataclass(slots=True)
class Row:
    line: int
    cells: list[str]
    sku: str
    parent: str | None
    fields: dict[str, str]  # reserved columns present
    values: dict[ValueKey, Value | None] = field(default_factory=dict)
    prices: dict[ValueKey, dict[str, Money | None]] = field(default_factory=dict)


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    ok: int = 0
    failed: int = 0
    products_written: int = 0
    products_unchanged: int = 0
    errors_path: str | None = None

    def line(self) -> str:
        where = f"; errors in {self.errors_path}" if self.failed and self.errors_path else ""
        return (
            f"{self.rows} rows: {self.ok} ok, {self.failed} failed; "
            f"{self.products_written} products written, {self.products_unchanged} unchanged{where}"
        )


def escape_cell(s: str) -> str:
    return "'" + s if s.startswith(FORMULA_START) else s


def unescape_cell(s: str) -> str:
    return s[1:] if len(s) > 1 and s[0] == "'" and s[1] in "=+-@\t\r" else s


# --------------------------------------------------------------------------------------------- header


def parse_header(header: Sequence[str], st: PimState) -> list[Column]:
    """Columns of a file; unknown columns, locales or channels reject the whole file."""
    attrs: dict[str, AttributeDef] = {}
    for fam in st.catalog.families.values():
        attrs.update(fam.by_code)
    channels = {c.id for c in st.channels}
    cols: list[Column] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        h = raw.strip()
        if h in seen:
            raise InvalidInput(f"column {h!r} appears twice")
        seen.add(h)
        if h in RESERVED:
            cols.append(Column(i, h))
            continue
        parts = h.split("-")
        attr = None
        rest: list[str] = []
        for n in range(len(parts), 0, -1):
            if "-".join(parts[:n]) in attrs:
                attr, rest = attrs["-".join(parts[:n])], parts[n:]
                break
        if attr is None:
            raise InvalidInput(f"unknown column {h!r}: not a reserved column ({', '.join(RESERVED)}) or an attribute")
        locale = currency = None
        if attr.type is AttributeType.PRICE:
            if not rest:
                raise InvalidInput(f"column {h!r}: a price column names its currency, e.g. {attr.code}-EUR")
            currency = rest.pop(0)
            check_currency(currency)
        if attr.localizable:
            if not rest:
                raise InvalidInput(f"column {h!r}: {attr.code} is localizable, e.g. {attr.code}-en_US")
            locale = rest.pop(0)
            if locale not in st.catalog.locales:
                raise InvalidInput(f"column {h!r}: unknown locale {locale!r}")
        channel = "-".join(rest) or None
        if channel is not None:
            if channel not in channels:
                raise InvalidInput(f"column {h!r}: unknown channel {channel!r}")
            if not attr.scopable:
                raise InvalidInput(f"column {h!r}: {attr.code} is not channel-specific")
        cols.append(Column(i, h, attr, locale, channel, currency, ValueKey(attr.code, locale, channel)))
    if "sku" not in seen:
        raise InvalidInput("the file needs a 'sku' column")
    return cols


# --------------------------------------------------------------------------------------------- cells


def parse_cell(attr: AttributeDef, text: str, units: Mapping[str, Any]) -> Value:
    t = attr.type
    s = unescape_cell(text)
    value: object
    try:
        if t in _LIST_TYPES:
            value = tuple(x.strip() for x in s.split("|") if x.strip())
        elif t is AttributeType.NUMBER:
            from accord.domain.pim import Measure

            amount, _, unit = s.strip().partition(" ")
            value = Measure(Decimal(amount), unit.strip() or None)
            if not value.amount.is_finite():
                raise InvalidOperation
        elif t is AttributeType.BOOLEAN:
            low = s.strip().lower()
            if low not in ("true", "false", "yes", "no", "1", "0"):
                raise InvalidInput(f"{attr.code}: expected true or false, got {s!r}")
            value = low in ("true", "yes", "1")
        elif t is AttributeType.DATE:
            value = date.fromisoformat(s.strip())
        elif t is AttributeType.GTIN:
            value = s.strip()
            problem = gtin_problem(value)
            if problem is not None:
                raise InvalidInput(f"{attr.code}: {problem}")
        elif t is AttributeType.ASSET:
            value = _asset(s)
        elif t is AttributeType.ASSET_LIST:
            value = tuple(_asset(x) for x in s.split("|") if x.strip())
        else:
            value = s
    except (InvalidOperation, ValueError) as exc:
        raise InvalidInput(f"{attr.code}: cannot read {s!r} as {t}: {exc or 'not a number'}") from None
    return attr.validate(value, units)


def _asset(s: str) -> AssetRef:
    parts = [p.strip() for p in s.split(";")]
    if len(parts) < 2:
        raise ValueError("an asset is uri;mime/type[;WxH]")
    w = h = None
    if len(parts) > 2 and parts[2]:
        ws, _, hs = parts[2].partition("x")
        w, h = int(ws), int(hs)
    return AssetRef(parts[0], parts[1], w, h)


def format_cell(attr: AttributeDef, value: Value) -> str:
    t = attr.type
    if isinstance(value, bool):
        s = "true" if value else "false"
    elif isinstance(value, date):
        s = value.isoformat()
    elif isinstance(value, AssetRef):
        s = _fmt_asset(value)
    elif isinstance(value, tuple):
        if t is AttributeType.ASSET_LIST:
            s = "|".join(_fmt_asset(a) for a in value if isinstance(a, AssetRef))
        else:
            s = "|".join(str(x) for x in value)
    else:
        s = str(value)
    return escape_cell(s)


def _fmt_asset(a: AssetRef) -> str:
    size = f";{a.width_px}x{a.height_px}" if a.width_px is not None and a.height_px is not None else ""
    return f"{a.uri};{a.mime_type}{size}"


# --------------------------------------------------------------------------------------------- readers


def _csv_rows(path: Path, progress: Progress | None) -> Iterator[tuple[int, list[str]]]:
    total = max(path.stat().st_size, 1)
    done = 0
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:

        def lines() -> Iterator[str]:
            nonlocal done
            for line in f:
                done += len(line)
                yield line

        reader = csv.reader(lines())
        for n, cells in enumerate(reader):
            if progress is not None and n % 500 == 0:
                progress(min(done, total), total)
            yield reader.line_num, cells
    if progress is not None:
        progress(total, total)


def _xlsx_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, datetime):
        return v.date().isoformat() if (v.hour, v.minute, v.second) == (0, 0, 0) else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def _xlsx_rows(path: Path, progress: Progress | None) -> Iterator[tuple[int, list[str]]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InvalidInput(f"{path.name}: not a readable .xlsx file ({type(exc).__name__})") from None
    try:
        ws = wb.active
        if ws is None:
            raise InvalidInput(f"{path.name}: the workbook has no sheet")
        total = max(int(ws.max_row or 1), 1)
        for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
            if progress is not None and n % 500 == 0:
                progress(min(n, total), total)
            yield n, [_xlsx_text(v) for v in row]
        if progress is not None:
            progress(total, total)
    finally:
        wb.close()


def read_rows(path: Path, progress: Progress | None = None) -> Iterator[tuple[int, list[str]]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, progress)
    if suffix == ".xlsx":
        return _xlsx_rows(path, progress)
    raise InvalidInput(f"{path.name}: use a .csv or .xlsx file")


# --------------------------------------------------------------------------------------------- import


class _Errors:
    """The error report, opened on the first failed row."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self.header = header
        self._f: TextIO | None = None
        self._w: Any = None

    def add(self, line: int, cells: list[str], reason: str) -> None:
        if self._w is None:
            self._f = self.path.open("w", encoding="utf-8", errors="surrogateescape", newline="")
            self._w = csv.writer(self._f)
            self._w.writerow([*self.header, "error"])
        self._w.writerow([*cells, f"line {line}: {reason}"])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def import_file(
    pim: Pim,
    path: Path,
    *,
    errors_out: Path | None = None,
    actor: str = "import",
    chunk_rows: int = CHUNK_ROWS,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` (.csv or .xlsx). File-level problems (unknown columns, locale, channel) raise
    :class:`InvalidInput` before anything is written; row problems go to the error report."""
    rows = read_rows(path, progress)
    first = next(rows, None)
    if first is None:
        raise InvalidInput(f"{path.name}: empty file (a header row is needed)")
    header = [unescape_cell(h) for h in first[1]]
    if any(_BAD_UTF8.search(h) for h in header):
        raise InvalidInput(f"{path.name}: the header is not valid UTF-8")
    st = pim.state()
    cols = parse_header(header, st)
    report = ImportReport()
    err_path = errors_out or path.with_name(path.stem + ".errors.csv")
    errors = _Errors(err_path, header)
    seen: set[int] = set()
    pending: list[Row] = []
    try:
        for line, cells in rows:
            if not any(c.strip() for c in cells):
                continue
            report.rows += 1
            try:
                row = _parse_row(line, cells, cols, st, seen)
            except AccordError as exc:
                errors.add(line, cells, str(exc))
                report.failed += 1
                continue
            if pending and len(pending) >= chunk_rows and row.parent is None:
                _flush(pim, pending, actor, report, errors)
                pending = []
            pending.append(row)
        if pending:
            _flush(pim, pending, actor, report, errors)
    finally:
        errors.close()
    if report.failed:
        report.errors_path = str(err_path)
    return report


def _parse_row(line: int, cells: list[str], cols: list[Column], st: PimState, seen: set[int]) -> Row:
    if len(cells) > len(cols):
        raise InvalidInput(f"{len(cells)} cells but {len(cols)} columns")
    if _BAD_UTF8.search("".join(cells)):
        raise InvalidInput("malformed UTF-8 in this row")
    cells = cells + [""] * (len(cols) - len(cells))
    fields: dict[str, str] = {}
    for col in cols:
        if col.attribute is None:
            fields[col.header] = cells[col.index].strip()
    sku = fields.get("sku", "")
    if not sku or len(sku) > 64 or any(ch.isspace() for ch in sku):
        raise InvalidInput(f"sku must be 1-64 characters without spaces, got {sku!r}")
    h = int.from_bytes(hashlib.blake2b(sku.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")
    if h in seen:
        raise InvalidInput(f"duplicate SKU {sku!r} in this file (an earlier row has it)")
    seen.add(h)
    parent = fields.get("parent") or None
    row = Row(line, cells, sku, parent, fields)
    units = st.catalog.units
    for col in cols:
        attr = col.attribute
        if attr is None:
            continue
        text = cells[col.index]
        key = col.key or ValueKey(attr.code, col.locale, col.channel)
        if col.currency is not None:
            amount: Money | None = None
            if text.strip():
                try:
                    dec = Decimal(unescape_cell(text).strip())
                except InvalidOperation:
                    raise InvalidInput(f"{col.header}: {text!r} is not an amount") from None
                if not dec.is_finite() or dec < 0:
                    raise InvalidInput(f"{col.header}: {text!r} must be a non-negative amount")
                amount = Money(dec, col.currency)
            row.prices.setdefault(key, {})[col.currency] = amount
            continue
        if not text.strip():
            row.values[key] = None
            continue
        try:
            row.values[key] = canonical(parse_cell(attr, text, units))
        except InvalidInput as exc:
            raise InvalidInput(f"column {col.header}: {exc}") from None
    return row


def _flush(pim: Pim, rows: list[Row], actor: str, report: ImportReport, errors: _Errors) -> None:
    with pim.db.tx() as tx:
        st = pim.state(tx)
        lookups = sorted({r.sku for r in rows} | {r.parent for r in rows if r.parent})
        owners = pim.product_of(tx, lookups)
        products = pim.load_products(tx, sorted(set(owners.values())))
        originals = dict(products)
        row_product: dict[int, str] = {}
        failed: dict[int, str] = {}
        # values this chunk's rows set, already validated (alive until the chunk ends, so ids are unique)
        checked: set[int] = set()
        for row in rows:
            try:
                pid = _apply_row(row, owners, products, st, checked)
                row_product[row.line] = pid
            except AccordError as exc:
                failed[row.line] = str(exc)
        # whole-product validation: a product that does not validate fails all its rows in this chunk
        to_write: list[Product] = []
        touched = set(row_product.values())
        for pid, prod in products.items():
            if pid not in touched:
                continue
            try:
                valid = canonical_product(st.catalog.validate_product(prod, checked=lambda _n, _k, v: id(v) in checked))
            except AccordError as exc:
                for line, p in row_product.items():
                    if p == pid and line not in failed:
                        failed[line] = f"product {pid}: {exc}"
                continue
            if same_product(originals.get(pid), valid):
                report.products_unchanged += 1
            else:
                to_write.append(valid)
        if to_write:
            results = pim.upsert_products_in(tx, to_write, actor, validated=True)
            report.products_written += sum(1 for r in results if r.changed)
            report.products_unchanged += sum(1 for r in results if not r.changed)
    for row in rows:
        if row.line in failed:
            errors.add(row.line, row.cells, failed[row.line])
            report.failed += 1
        else:
            report.ok += 1


def _apply_row(row: Row, owners: dict[str, str], products: dict[str, Product], st: PimState, checked: set[int]) -> str:
    """Apply one row to the working copy of its product; returns the product id. Raises without changing
    anything when the row is invalid. The ids of the (validated) values it sets are added to ``checked``."""
    cat = st.catalog
    fields = row.fields
    if row.parent is None:
        pid = row.sku
        owner = owners.get(row.sku)
        if owner is not None and owner != row.sku:
            raise InvalidInput(f"{row.sku} is a variant of {owner}: give its parent")
        prod = products.get(pid)
        family = fields.get("family") or (prod.family if prod is not None else "")
        if not family:
            raise InvalidInput(f"new product {pid} needs a family")
        if family not in cat.families:
            raise InvalidInput(f"unknown family {family!r}")
        if prod is None:
            prod = Product(pid, family, (ProductNode(pid),))
        elif prod.family != family:
            prod = Product(pid, family, prod.nodes)
        node = prod.root
    else:
        maybe_pid = owners.get(row.parent)
        if maybe_pid is None:
            raise InvalidInput(f"unknown parent {row.parent!r} (parents must come first)")
        pid = maybe_pid
        owner = owners.get(row.sku)
        if owner is not None and owner != pid:
            raise InvalidInput(f"{row.sku} already belongs to product {owner}")
        found = products.get(pid)
        if found is None:
            raise InvalidInput(f"parent {row.parent!r} failed earlier in this file")
        prod = found
        fam = fields.get("family")
        if fam and fam != prod.family:
            raise InvalidInput(f"family {fam!r} differs from its product's family {prod.family!r}")
        existing = prod.by_id.get(row.sku)
        node = replace(existing, parent=row.parent) if existing is not None else ProductNode(row.sku, row.parent)
    family_def = cat.family(prod.family)
    values = dict(node.values)
    for key, val in row.values.items():
        if val is None:
            values.pop(key, None)
        else:
            cat.validate_value(family_def, key, val, checked=True)  # parse_cell validated the value itself
            values[key] = val
            checked.add(id(val))
    for key, amounts in row.prices.items():
        attr = family_def.attr(key.attribute)
        cur = values.get(key)
        by_cur = {m.currency: m for m in cur if isinstance(m, Money)} if isinstance(cur, tuple) else {}
        for currency, m in amounts.items():
            if m is None:
                by_cur.pop(currency, None)
            else:
                by_cur[currency] = Money(
                    m.amount, currency, by_cur[currency].vat_included if currency in by_cur else None
                )
        if by_cur:
            values[key] = price = canonical(cat.validate_value(family_def, key, tuple(by_cur.values())))
            checked.add(id(price))
        else:
            values.pop(key, None)
        del attr
    axes = node.axes
    if "axes" in fields:
        axes = tuple(a.strip() for a in fields["axes"].split(",") if a.strip())
    cats = node.categories
    if "categories" in fields:
        cats = frozenset(c.strip() for c in fields["categories"].split(",") if c.strip())
        for c in cats:
            if c not in cat.categories:
                raise InvalidInput(f"unknown category {c!r}")
    new_node = ProductNode(node.id, node.parent, values, axes, cats)
    products[pid] = prod.with_node(new_node)
    owners[row.sku] = pid
    return pid


# --------------------------------------------------------------------------------------------- export


def _columns(pim: Pim, tx: Tx, st: PimState) -> list[Column]:
    attrs: dict[str, AttributeDef] = {}
    for fam in st.catalog.families.values():
        attrs.update(fam.by_code)
    v = pt.pim_values
    keys = sorted(
        (r[0], r[1], r[2]) for r in pim._all(tx, sa.select(v.c.attribute, v.c.locale, v.c.channel).distinct())
    )
    price_attrs = [a for a in attrs.values() if a.type is AttributeType.PRICE]
    currencies: dict[tuple[str, str], set[str]] = {}
    if price_attrs:
        import orjson

        q = sa.select(v.c.attribute, v.c.channel, v.c.value).where(v.c.attribute.in_([a.code for a in price_attrs]))
        for a, ch, raw in pim._all(tx, q):
            for m in orjson.loads(raw):
                currencies.setdefault((a, ch), set()).add(str(m["currency"]))
    cols = [Column(i, h) for i, h in enumerate(RESERVED)]
    for a, loc, ch in keys:
        attr = attrs.get(a)
        if attr is None:
            continue
        base = "-".join(x for x in (a, loc, ch) if x)
        if attr.type is AttributeType.PRICE:
            for cur in sorted(currencies.get((a, ch), ())):
                header = "-".join(x for x in (a, cur, loc, ch) if x)
                key = ValueKey(a, loc or None, ch or None)
                cols.append(Column(len(cols), header, attr, loc or None, ch or None, cur, key))
        else:
            cols.append(
                Column(len(cols), base, attr, loc or None, ch or None, None, ValueKey(a, loc or None, ch or None))
            )
    return cols


def _export_rows(pim: Pim, progress: Progress | None) -> Iterator[list[str]]:
    p = pt.pim_products
    with pim.db.read() as tx:
        st = pim.state(tx)
        cols = _columns(pim, tx, st)
        yield [c.header for c in cols]
        total = int(pim._all(tx, sa.select(sa.func.count()).select_from(p))[0][0]) or 1
        after, done = "", 0
        while True:
            ids = [r[0] for r in pim._all(tx, sa.select(p.c.id).where(p.c.id > after).order_by(p.c.id).limit(500))]
            if not ids:
                break
            after = ids[-1]
            products = pim.load_products(tx, ids)
            for pid in ids:
                prod = products[pid]
                for node in _parents_first(prod):
                    yield _node_cells(prod, node, cols)
            done += len(ids)
            if progress is not None:
                progress(done, total)


def _parents_first(prod: Product) -> list[ProductNode]:
    out, stack = [], [prod.id]
    while stack:
        cur = stack.pop()
        out.append(prod.node(cur))
        stack.extend(reversed(prod.children_of.get(cur, ())))
    return out


def _node_cells(prod: Product, node: ProductNode, cols: list[Column]) -> list[str]:
    out: list[str] = []
    for c in cols:
        if c.attribute is None:
            if c.header == "sku":
                out.append(escape_cell(node.id))
            elif c.header == "parent":
                out.append(escape_cell(node.parent or ""))
            elif c.header == "family":
                out.append(prod.family if node.parent is None else "")
            elif c.header == "axes":
                out.append(",".join(node.axes))
            else:
                out.append(",".join(sorted(node.categories)))
            continue
        val = node.values.get(c.key or ValueKey(c.attribute.code, c.locale, c.channel))
        if val is None:
            out.append("")
        elif c.currency is not None:
            amount = next((m.amount for m in val if isinstance(m, Money) and m.currency == c.currency), None)  # type: ignore[union-attr]
            out.append("" if amount is None else str(amount))
        else:
            out.append(format_cell(c.attribute, val))
    return out


def export_file(pim: Pim, path: Path, *, progress: Progress | None = None) -> int:
    """Write every product (parents before children) to ``path`` (.csv or .xlsx); returns the rows written."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise InvalidInput(f"{path.name}: use a .csv or .xlsx file")
    tmp = path.with_name(path.name + ".part")
    n = 0
    if suffix == ".csv":
        with tmp.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            for cells in _export_rows(pim, progress):
                w.writerow(cells)
                n += 1
    else:
        import openpyxl

        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("products")
        for cells in _export_rows(pim, progress):
            ws.append(cells)
            n += 1
        wb.save(tmp)
    os.replace(tmp, path)
    return n - 1
