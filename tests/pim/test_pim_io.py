"""CSV / XLSX import and export: round trip, idempotency, bad input, formula injection."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from accord.bootstrap import App
from accord.domain.errors import InvalidInput
from accord.domain.pim import Money, ValueKey
from accord.pim import Pim
from accord.pim.io import export_file, import_file
from accord.store import pim_tables as pt

HEADER = [
    "sku", "parent", "family", "axes", "categories", "title-en_US", "title-de_DE", "description-de_DE-amazon-de",
    "brand", "gtin", "price-EUR", "price-USD", "size", "weight", "launch", "organic", "bullet_points-en_US",
    "main_image",
]  # fmt: skip
ROWS = [
    ["TEE", "", "general", "size", "toys", "Tee", "T-Shirt", "Für Amazon", "Acme", "4006381333931", "21.99",
     "19.99", "", "0.2 kg", "2026-03-01", "true", "Soft|Durable", "https://x.example/t.jpg;image/jpeg;1600x1600"],
    ["TEE-S", "TEE", "", "", "", "", "", "", "", "", "", "", "s", "", "", "", "", ""],
    ["TEE-M", "TEE", "", "", "", "", "", "", "", "", "", "", "m", "", "", "", "", ""],
]  # fmt: skip


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _history(app: App) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(pt.pim_history)).scalar_one())


def test_import_builds_products_and_is_idempotent(app: App, pim: Pim, tmp_path: Path) -> None:
    src = _write(tmp_path / "in.csv", HEADER, ROWS)
    rep = import_file(pim, src)
    assert (rep.rows, rep.ok, rep.failed, rep.products_written) == (3, 3, 0, 1)
    prod, version = pim.get_product("TEE-S")
    assert prod.variants() == ("TEE-S", "TEE-M") and version == 1
    root = prod.root.values
    assert root[ValueKey("description", "de_DE", "amazon-de")] == "Für Amazon"
    assert {m.currency for m in root[ValueKey("price")]} == {"EUR", "USD"}  # type: ignore[union-attr]
    assert {s.id for s in app.engine.skus()} == {"TEE-S", "TEE-M"}
    n = _history(app)
    rep2 = import_file(pim, src)
    assert (rep2.ok, rep2.products_written, rep2.products_unchanged) == (3, 0, 1)
    assert _history(app) == n and pim.get_product("TEE")[1] == 1


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_round_trips(app: App, pim: Pim, tmp_path: Path, suffix: str) -> None:
    import_file(pim, _write(tmp_path / "in.csv", HEADER, ROWS))
    before = pim.get_product("TEE")[0]
    out = tmp_path / f"out{suffix}"
    assert export_file(pim, out) == 3
    n = _history(app)
    rep = import_file(pim, out)
    assert rep.failed == 0 and rep.products_written == 0
    assert _history(app) == n and pim.get_product("TEE")[0] == before
    # and into an empty catalogue row for row: same products
    prod = pim.get_product("TEE")[0]
    assert prod.root.values[ValueKey("price")] == (Money(__import__("decimal").Decimal("21.99"), "EUR"),
                                                   Money(__import__("decimal").Decimal("19.99"), "USD"))  # fmt: skip


def test_empty_cell_removes_a_value_and_records_history(app: App, pim: Pim, tmp_path: Path) -> None:
    import_file(pim, _write(tmp_path / "a.csv", HEADER, ROWS))
    rep = import_file(pim, _write(tmp_path / "b.csv", ["sku", "brand", "price-USD"], [["TEE", "", ""]]))
    assert rep.products_written == 1
    prod, version = pim.get_product("TEE")
    assert ValueKey("brand") not in prod.root.values and version == 2
    assert [m.currency for m in prod.root.values[ValueKey("price")]] == ["EUR"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("colour", "unknown column 'colour'"),
        ("title-xx_XX", "unknown locale 'xx_XX'"),
        ("description-de_DE-nope-de", "unknown channel 'nope-de'"),
        ("brand-amazon-de", "not channel-specific"),
        ("price", "names its currency"),
    ],
)
def test_bad_header_rejects_the_file(pim: Pim, tmp_path: Path, column: str, message: str) -> None:
    src = _write(tmp_path / "in.csv", ["sku", column], [["X", "1"]])
    with pytest.raises(InvalidInput, match=message):
        import_file(pim, src)
    assert pim.summary()[0]["variants"] == 0


def test_bad_rows_go_to_the_error_report(pim: Pim, tmp_path: Path) -> None:
    bad = [
        [c if i != 3 else "" for i, c in enumerate(ROWS[0])],  # no variants here: no axes
        ["BADW", "", "general", "", "", "t", "", "", "", "", "", "", "", "heavy", "", "", "", ""],  # wrong type
        ["BADG", "", "general", "", "", "t", "", "", "", "4006381333932", "", "", "", "", "", "", "", ""],
        ["BADB", "", "general", "", "", "t", "", "", "", "", "", "", "", "", "", "maybe", "", ""],
        ["BADD", "", "general", "", "", "t", "", "", "", "", "", "", "", "", "2026-13-01", "", "", ""],
        ["BADP", "", "general", "", "", "t", "", "", "", "", "-3", "", "", "", "", "", "", ""],
        ["TEE", "", "general", "", "", "again", "", "", "", "", "", "", "", "", "", "", "", ""],  # duplicate
        ["ORPH", "NOPE", "", "", "", "", "", "", "", "", "", "", "s", "", "", "", "", ""],
        ["GOOD", "", "general", "", "", "Good", "", "", "", "", "", "", "", "", "", "", "", ""],
    ]
    src = _write(tmp_path / "in.csv", HEADER, bad)
    errs = tmp_path / "errors.csv"
    rep = import_file(pim, src, errors_out=errs)
    assert (rep.rows, rep.ok, rep.failed) == (9, 2, 7)
    report = _read(errs)
    assert report[0] == [*HEADER, "error"]
    by_sku = {r[0]: r[-1] for r in report[1:]}
    assert by_sku["BADW"].startswith("line 3: column weight:")
    assert "check digit" in by_sku["BADG"] and "line 4" in by_sku["BADG"]
    assert "true or false" in by_sku["BADB"]
    assert "launch" in by_sku["BADD"]
    assert "non-negative" in by_sku["BADP"]
    assert "duplicate SKU 'TEE'" in by_sku["TEE"]
    assert "unknown parent 'NOPE'" in by_sku["ORPH"]
    assert report[1][:-1] == bad[1]  # the original row, unchanged
    assert pim.get_product("GOOD")[0].root.values[ValueKey("title", "en_US")] == "Good"


def test_malformed_utf8_row_is_reported_not_fatal(pim: Pim, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"sku,family,title-en_US\nA1,general,ok\nA2,general,bad \xff\xfe here\nA3,general,fine\n")
    errs = tmp_path / "e.csv"
    rep = import_file(pim, src, errors_out=errs)
    assert (rep.ok, rep.failed) == (2, 1)
    raw = errs.read_bytes()
    assert b"\xff\xfe" in raw and b"line 3: malformed UTF-8" in raw


def test_invalid_product_fails_all_its_rows(pim: Pim, tmp_path: Path) -> None:
    rows = [["SOLO", "", "general", "size", "", "Solo"], ["SOLO-S", "SOLO", "", "", "", ""]]  # variant lacks size
    rep = import_file(pim, _write(tmp_path / "in.csv", ["sku", "parent", "family", "axes", "categories",
                                                        "title-en_US"], rows))  # fmt: skip
    assert rep.failed == 2 and rep.ok == 0


def test_export_escapes_formula_injection(pim: Pim, tmp_path: Path) -> None:
    rows = [["EVIL", "", "general", "", "", "=HYPERLINK(\"http://x\")", "+1", "", "@SUM(A1)", "", "", "", "", "",
             "", "", "-a|b", ""]]  # fmt: skip
    import_file(pim, _write(tmp_path / "in.csv", HEADER, rows))
    out = tmp_path / "out.csv"
    export_file(pim, out)
    exported = _read(out)
    row = dict(zip(exported[0], exported[1], strict=True))
    assert row["title-en_US"] == '\'=HYPERLINK("http://x")'
    assert row["title-de_DE"] == "'+1" and row["brand"] == "'@SUM(A1)" and row["bullet_points-en_US"] == "'-a|b"
    for cell in exported[1]:
        assert not cell.startswith(("=", "+", "-", "@"))
    xl = tmp_path / "out.xlsx"
    export_file(pim, xl)
    wb = openpyxl.load_workbook(xl)
    ws = wb.active
    assert ws is not None
    values = [c.value for c in ws[2]]
    assert '\'=HYPERLINK("http://x")' in values and all(c.data_type != "f" for c in ws[2])
    wb.close()
    # and the escaped values read back as the originals
    n_written = import_file(pim, out).products_written
    assert n_written == 0
    assert pim.get_product("EVIL")[0].root.values[ValueKey("title", "en_US")] == '=HYPERLINK("http://x")'
