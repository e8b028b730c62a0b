"""``accord bench catalog``: generate a catalogue (30 attributes, 3 locales), then measure CSV import, a full
readiness recompute over every variant × channel × locale, one product edit until its readiness is current on
every channel, export, and the process's peak RSS."""

from __future__ import annotations

import csv
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from accord.domain.availability import Channel
from accord.domain.pim import AssetKind, AttributeDef, AttributeType, Locale, SelectOption, ValueKey

T = AttributeType
LOCALES = ("en_US", "de_DE", "fr_FR")
SIZES = ("s", "m", "l", "xl")
_DIALECTS = ("amazon", "google_shopping", "ebay", "walmart", "shopify")
_MARKETS = (("US", "USD", "NA", ("en_US",), False), ("DE", "EUR", "EU", ("de_DE",), True),
            ("FR", "EUR", "EU", ("fr_FR",), True), ("GB", "GBP", "UK", ("en_US",), True))  # fmt: skip


def attributes() -> list[AttributeDef]:
    req = frozenset({"*"})
    attrs = [
        AttributeDef("title", T.LOCALIZED_TEXT, localizable=True, scopable=True, required_channels=req),
        AttributeDef("description", T.RICH_TEXT, localizable=True),
        AttributeDef("bullet_points", T.TEXT_LIST, localizable=True),
        AttributeDef("safety_information", T.LOCALIZED_TEXT, localizable=True),
        AttributeDef("brand", T.TEXT),
        AttributeDef("main_image", T.ASSET, asset_kind=AssetKind.IMAGE),
        AttributeDef("gtin", T.GTIN),
        AttributeDef("price", T.PRICE, scopable=True),
        AttributeDef("manufacturer_name", T.TEXT),
        AttributeDef("manufacturer_address", T.TEXT),
        AttributeDef("manufacturer_contact", T.TEXT),
        AttributeDef("manufacturer_country", T.TEXT),
        AttributeDef("uk_responsible_person_name", T.TEXT),
        AttributeDef("uk_responsible_person_address", T.TEXT),
        AttributeDef("uk_responsible_person_contact", T.TEXT),
        AttributeDef("size", T.SINGLE_SELECT, options=tuple(SelectOption(s) for s in SIZES)),
        AttributeDef("weight", T.NUMBER, dimension="mass"),
        AttributeDef("organic", T.BOOLEAN),
    ]
    attrs += [AttributeDef(f"spec_{i:02d}", T.TEXT) for i in range(30 - len(attrs))]
    return attrs


def _gtin(n: int) -> str:
    body = f"400{n:09d}"
    total = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def write_catalog_csv(path: Path, variants: int) -> int:
    """One product per 4 variants (size axis); products every 10th without a GTIN (some blocked rows)."""
    attrs = attributes()
    header = ["sku", "parent", "family", "axes", "categories"]
    for a in attrs:
        if a.code == "price":
            header += ["price-EUR", "price-GBP", "price-USD"]
        elif a.localizable:
            header += [f"{a.code}-{loc}" for loc in LOCALES]
        else:
            header.append(a.code)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        products = (variants + len(SIZES) - 1) // len(SIZES)
        made = 0
        for p in range(products):
            pid = f"P{p:07d}"
            root: dict[str, str] = {"sku": pid, "family": "apparel", "axes": "size", "categories": "all"}
            for loc in LOCALES:
                root[f"title-{loc}"] = f"Acme shirt {p} ({loc})"
                root[f"description-{loc}"] = f"A comfortable shirt, model {p}."
                root[f"bullet_points-{loc}"] = "Soft|Durable|Washable"
                root[f"safety_information-{loc}"] = "Keep away from fire."
            root |= {
                "brand": "Acme",
                "main_image": f"https://cdn.example.com/{pid}.jpg;image/jpeg;1600x1600",
                "gtin": "" if p % 10 == 0 else _gtin(p),
                "price-EUR": "21.99",
                "price-GBP": "18.99",
                "price-USD": "19.99",
                "manufacturer_name": "Acme GmbH",
                "manufacturer_address": "Hauptstr. 1, 10115 Berlin, DE",
                "manufacturer_contact": "safety@acme.example",
                "manufacturer_country": "DE",
                "uk_responsible_person_name": "Acme UK Ltd",
                "uk_responsible_person_address": "1 High St, London SW1A 1AA, GB",
                "uk_responsible_person_contact": "uk-safety@acme.example",
                "weight": "0.2 kg",
                "organic": "true" if p % 2 else "false",
            }
            for a in attrs:
                if a.code.startswith("spec_"):
                    root[a.code] = f"value {a.code[5:]}"
            w.writerow([root.get(h, "") for h in header])
            rows += 1
            for s in SIZES:
                if made >= variants:
                    break
                w.writerow([{"sku": f"{pid}-{s.upper()}", "parent": pid, "size": s}.get(h, "") for h in header])
                rows += 1
                made += 1
    return rows


def _rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024, 1)


def run_catalog_bench(
    *, variants: int = 100_000, channels: int = 32, database_url: str | None = None, progress: bool = False
) -> dict[str, Any]:
    from accord.bootstrap import build_app
    from accord.pim.io import export_file, import_file
    from accord.pim.service import Pim

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="accord-bench-catalog-") as tmp:
        d = Path(tmp)
        url = database_url or f"sqlite:///{d / 'catalog.db'}"
        app = build_app(database_url=url, migrate=True)
        try:
            pim = Pim(app.db, app.engine)
            pim.set_locales([Locale(loc) for loc in LOCALES])
            for a in attributes():
                pim.set_attribute(a)
            pim.set_family("apparel", [a.code for a in attributes()])
            from accord.domain.pim import Category

            pim.set_category(Category("all"))
            for i in range(channels):
                dialect = _DIALECTS[i % len(_DIALECTS)]
                country, currency, region, locs, vat = _MARKETS[(i // len(_DIALECTS)) % len(_MARKETS)]
                cid = f"{dialect.replace('_', '')}-{country.lower()}-{i:02d}"
                app.engine.add_channel(Channel(cid, dialect, region, currency, ()))
                pim.set_channel_context(cid, country=country, locales=locs, vat_inclusive=vat)
            src = d / "catalog.csv"
            rows = write_catalog_csv(src, variants)
            say(f"generated {rows} rows ({variants} variants); importing...")
            t0, c0 = time.perf_counter(), time.process_time()
            report = import_file(pim, src, errors_out=d / "errors.csv", chunk_rows=2000)
            import_s, import_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            if report.failed:
                raise RuntimeError(f"bench import failed rows: {report.line()}")
            say(f"import {import_s:.1f}s; full readiness recompute...")
            t0, c0 = time.perf_counter(), time.process_time()
            full = pim.recompute()
            readiness_full_s, readiness_full_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            say(f"recompute {readiness_full_s:.1f}s; single edits...")
            edits_ms = []
            for n in range(7):
                prod, _ = pim.get_product(f"P{(n * 7919) % max(variants // 4, 1):07d}")
                root = prod.root
                key = ValueKey("title", "de_DE")
                t0 = time.perf_counter()
                pim.upsert_product(prod.with_node(root.with_value(key, f"Edited title {n}")), "bench")
                edits_ms.append((time.perf_counter() - t0) * 1000)
            say("export...")
            t0, c0 = time.perf_counter(), time.process_time()
            exported = export_file(pim, d / "export.csv")
            export_s, export_cpu_s = time.perf_counter() - t0, time.process_time() - c0
            from accord.store import pim_tables as pt

            with app.db.engine.connect() as conn:
                import sqlalchemy as sa

                readiness_rows = int(
                    conn.execute(sa.select(sa.func.count()).select_from(pt.pim_readiness)).scalar_one()
                )
        finally:
            app.close()
    return {
        "backend": app.db.backend,
        "variants": variants,
        "products": (variants + len(SIZES) - 1) // len(SIZES),
        "rows": rows,
        "attributes": len(attributes()),
        "locales": len(LOCALES),
        "channels": channels,
        "readiness_rows": readiness_rows,
        "import_s": round(import_s, 2),
        "import_rows_per_s": round(rows / import_s),
        # CPU seconds of this process: on a shared machine, wall time also counts waiting for a core
        "import_cpu_s": round(import_cpu_s, 2),
        "readiness_full_s": round(readiness_full_s, 2),
        "readiness_full_cpu_s": round(readiness_full_cpu_s, 2),
        "readiness_full_evaluated": full.get("evaluated", 0),
        "readiness_one_edit_ms": round(statistics.median(edits_ms), 2),
        "readiness_one_edit_max_ms": round(max(edits_ms), 2),
        "export_s": round(export_s, 2),
        "export_cpu_s": round(export_cpu_s, 2),
        "exported_rows": exported,
        "peak_rss_mb": _rss_mb(),
    }
