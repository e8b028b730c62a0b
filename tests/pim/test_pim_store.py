"""Storage conformance of the PIM on SQLite and PostgreSQL: rows, ledger SKUs, history, readiness and events
written in one transaction, incrementally."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from accord.bootstrap import App
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.pim import ValueKey
from accord.pim import Pim
from accord.store import pim_tables as pt
from accord.store import schema as t

from .helpers import shirt


def _count(app: App, table: sa.Table, *where: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _events(app: App, type_: str) -> list[dict[str, Any]]:
    with app.db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.outbox.c.data).where(t.outbox.c.type == type_).order_by(t.outbox.c.id))
        return [orjson.loads(r[0]) for r in rows]


def test_create_writes_variants_as_skus_readiness_and_events(app: App, pim: Pim) -> None:
    res = pim.upsert_product(shirt(), "alice")
    assert (res.created, res.changed, res.version) == (True, True, 1)
    assert {s.id for s in app.engine.skus()} == {"SHIRT-S", "SHIRT-M"}
    # 2 variants × (amazon-us 1 + amazon-de 2 + google-de 1 + shopify 1) locales, all without issues: no row is
    # stored for them (readiness is stored sparsely), the API lists all ten
    rows = pim.readiness("SHIRT")
    assert len(rows) == 10 and all(r["ready"] and r["score"] == 100 and r["issues"] == [] for r in rows)
    assert _count(app, pt.pim_readiness) == 0
    assert sum(len(e["changes"]) for e in _events(app, "ReadinessChanged")) == 10
    assert _events(app, "ProductUpdated")[0]["variants"] == ["SHIRT-S", "SHIRT-M"]
    assert len(_events(app, "ReadinessChanged")) == 2
    assert len(_events(app, "SkuAdded")) == 2
    assert _count(app, pt.pim_assets) == 1


def test_same_product_twice_changes_nothing(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt())
    before = (_count(app, pt.pim_history), _count(app, t.outbox), _count(app, pt.pim_readiness))
    res = pim.upsert_product(shirt())
    assert not res.changed and res.version == 1
    assert (_count(app, pt.pim_history), _count(app, t.outbox), _count(app, pt.pim_readiness)) == before


def test_edit_updates_only_affected_rows_and_emits_readiness_changed(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt())
    n_events = len(_events(app, "ReadinessChanged"))
    # a bad check digit: GTIN is read by the gtin pack on every channel → every row turns not ready
    res = pim.upsert_product(shirt(gtin="4006381333932"), "bob")
    assert res.version == 2 and res.value_changes == 1
    rows = pim.readiness("SHIRT-S", "amazon-us")
    assert [r["ready"] for r in rows] == [False]
    assert any(i["code"] == "gtin_check_digit" for i in rows[0]["issues"])
    changed = _events(app, "ReadinessChanged")[n_events:]
    assert {e["sku"] for e in changed} == {"SHIRT-S", "SHIRT-M"}
    assert all(c["was_ready"] is True and c["ready"] is False for e in changed for c in e["changes"])
    # a German-only title edit touches only channels showing de_DE, and none of them change readiness
    n_events = len(_events(app, "ReadinessChanged"))
    p = shirt(gtin="4006381333932")
    p = p.with_node(p.root.with_value(ValueKey("title", "de_DE"), "Neuer Titel"))
    res = pim.upsert_product(p)
    assert res.readiness_written == 0 and len(_events(app, "ReadinessChanged")) == n_events
    summary = {s["channel"]: s for s in pim.summary()}
    assert summary["amazon-us"]["blocked"] == 2 and summary["amazon-us"]["ready"] == 0
    assert summary["amazon-us"]["top_issues"][0]["issue"] == "gtin_check_digit:gtin"


def test_history_and_revert(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt(), "alice")
    pim.upsert_product(shirt(gtin="4006381333932", brand="Other"), "bob")
    hist = pim.history("SHIRT-S")
    last = [h for h in hist if h["version"] == 2]
    assert {(h["attribute"], h["old"], h["new"], h["actor"]) for h in last} == {
        ("brand", "Acme", "Other", "bob"),
        ("gtin", "4006381333931", "4006381333932", "bob"),
    }
    res = pim.revert("SHIRT-M", 1, "carol")
    assert res.version == 3
    prod, version = pim.get_product("SHIRT")
    assert version == 3 and prod.root.values[ValueKey("gtin")] == "4006381333931"
    assert all(r["ready"] for r in pim.readiness("SHIRT"))
    assert [h["actor"] for h in pim.history("SHIRT") if h["version"] == 3] == ["carol (revert to v1)"] * 2
    with pytest.raises(InvalidInput):
        pim.revert("SHIRT", 9)


def test_revert_restores_removed_variants_and_values_and_removes_added_ones(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt(), "alice")  # v1: SHIRT-S, SHIRT-M
    v1 = pim.get_product("SHIRT")[0]
    gone_m = shirt(sizes=("s",), brand=None)
    pim.upsert_product(gone_m.with_node(gone_m.root.with_value(ValueKey("organic"), True)), "bob")  # v2
    pim.upsert_product(shirt(sizes=("s", "l"), brand=None), "bob")  # v3: SHIRT-L added, organic cleared
    assert pim.get_product("SHIRT")[0].variants() == ("SHIRT-S", "SHIRT-L")
    removed = [h for h in pim.history("SHIRT") if h["attribute"] == "@node" and h["new"] is None]
    assert [(h["node"], h["version"], h["old"]["parent"]) for h in removed] == [("SHIRT-M", 2, "SHIRT")]

    res = pim.revert("SHIRT-S", 1, "carol")
    prod, version = pim.get_product("SHIRT")
    assert res.version == version == 4
    assert prod == v1  # the tree, every value (brand back, organic gone) and the node order
    assert [r["sku"] for r in pim.readiness("SHIRT")].count("SHIRT-M") == 5
    with pytest.raises(NotFound):
        pim.readiness("SHIRT-L")  # removed again: its readiness rows went with it
    assert pim.recompute()["written"] == 0
    # reverting to v2 removes SHIRT-M again and brings organic back
    pim.revert("SHIRT", 2)
    prod, _ = pim.get_product("SHIRT")
    assert prod.variants() == ("SHIRT-S",) and prod.root.values[ValueKey("organic")] is True


def test_channel_context_and_family_changes_update_readiness(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt())
    pim.set_channel_context("amazon-us", country="US", locales=["en_US", "de_DE"], vat_inclusive=False)
    assert {r["locale"] for r in pim.readiness("SHIRT-S", "amazon-us")} == {"en_US", "de_DE"}
    pim.set_channel_context("amazon-us", country="US", locales=["de_DE"], vat_inclusive=False)
    assert {r["locale"] for r in pim.readiness("SHIRT-S", "amazon-us")} == {"de_DE"}
    with pytest.raises(NotFound):
        pim.set_channel_context("nope", country="US", locales=["en_US"], vat_inclusive=False)
    with pytest.raises(NotFound):
        pim.set_channel_context("amazon-us", country="US", locales=["xx_XX"], vat_inclusive=False)
    # removing an attribute that has values is refused; adding a required one blocks every variant
    from accord.domain.pim import AttributeDef, AttributeType

    with pytest.raises(InvalidInput):
        pim.set_family("general", ["title"])
    pim.set_attribute(AttributeDef("material", AttributeType.TEXT, required_channels=frozenset({"*"})))
    fam = list(pim.state().catalog.family("general").by_code)
    pim.set_family("general", [*fam, "material"])
    assert not any(r["ready"] for r in pim.readiness("SHIRT"))
    assert _count(app, pt.pim_readiness, pt.pim_readiness.c.ready == sa.true()) == 0


def test_full_recompute_repairs_and_is_quiet_when_current(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt(gtin="4006381333932"))  # a bad check digit: every key has an error row
    assert pim.recompute()["written"] == 0
    r = pt.pim_readiness
    assert _count(app, r) == 10
    with app.db.engine.begin() as conn:
        # corrupt: wrong rows for SHIRT-S, a missing row for SHIRT-M, a row for a key that does not exist
        conn.execute(sa.update(r).where(r.c.variant_id == "SHIRT-S").values(ready=True, score=100, issues="[]"))
        conn.execute(sa.delete(r).where(r.c.variant_id == "SHIRT-M", r.c.channel_id == "amazon-us"))
        conn.execute(
            sa.insert(r).values(
                variant_id="SHIRT-S", channel_id="amazon-us", locale="de_DE", product_id="SHIRT",
                ready=False, score=0, issues="[]", updated_at=0,
            )
        )  # fmt: skip
    n_events = len(_events(app, "ReadinessChanged"))
    res = pim.recompute()
    assert res["written"] == 6 and res["dropped"] == 1
    assert not any(x["ready"] for x in pim.readiness("SHIRT")) and _count(app, r) == 10
    changed = _events(app, "ReadinessChanged")[n_events:]
    assert sorted((e["sku"], len(e["changes"])) for e in changed) == [("SHIRT-M", 1), ("SHIRT-S", 5)]
    # a product fixed: its rows go (no issues, nothing stored) and readiness reads ready everywhere
    pim.upsert_product(shirt())
    assert _count(app, r) == 0 and all(x["ready"] for x in pim.readiness("SHIRT"))
    assert pim.recompute()["written"] == 0


def test_variant_ids_are_unique_across_products(app: App, pim: Pim) -> None:
    pim.upsert_product(shirt("SHIRT"))
    clash = shirt("OTHER")
    nodes = tuple(n if n.id != "OTHER-S" else n.__class__("SHIRT-S", "OTHER", n.values) for n in clash.nodes)
    with pytest.raises(InvalidInput, match="already belongs"):
        pim.upsert_product(clash.__class__("OTHER", "general", nodes))
    assert _count(app, pt.pim_products) == 1


def test_one_batch_of_new_and_edited_products_writes_what_one_at_a_time_would(app: App, pim: Pim) -> None:
    """The batched path (readiness read once for the whole batch, rows written together at the end) gives the
    same rows, counts and events as writing each product in its own call."""
    pim.upsert_product(shirt("A"))
    pim.upsert_product(shirt("B"))
    n_events = len(_events(app, "ReadinessChanged"))
    res = pim.upsert_products([shirt("A", gtin="4006381333932"), shirt("C"), shirt("B")], "batch")
    assert [(r.product, r.created, r.changed) for r in res] == [
        ("A", False, True),
        ("C", True, True),
        ("B", False, False),
    ]
    assert res[0].readiness_written == res[0].readiness_changed > 0
    assert res[1].readiness_written == res[1].readiness_changed > 0
    batched = {v: pim.readiness(v) for v in ("A", "B", "C")}
    changed = _events(app, "ReadinessChanged")[n_events:]
    assert {e["sku"] for e in changed} == {"A-S", "A-M", "C-S", "C-M"}
    assert sum(len(e["changes"]) for e in changed) == res[0].readiness_changed + res[1].readiness_changed
    assert not any(r["ready"] for r in batched["A"]) and all(r["ready"] for r in batched["C"])
    # the same end state one product at a time, and a full recompute finds nothing to fix
    pim.upsert_product(shirt("D"))
    assert [{**r, "sku": r["sku"].replace("D-", "C-")} for r in pim.readiness("D")] == batched["C"]
    assert pim.recompute()["written"] == 0
