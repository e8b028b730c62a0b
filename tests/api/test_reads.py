"""ATS, events and verification."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from anyio.from_thread import BlockingPortal

from accord.api.app import create_app
from accord.app.engine import Mismatch
from accord.bootstrap import App
from accord.store import schema as t

from .support import Api, assert_problem, snapshot


def test_ats_for_all_channels_or_one(seeded: Api) -> None:
    assert seeded.get("/v1/ats/sku1").json() == {"sku": "sku1", "ats": {"shop": 10}}
    assert seeded.get("/v1/ats/sku1", params={"channel": "shop"}).json() == {"sku": "sku1", "ats": {"shop": 10}}
    assert_problem(seeded.get("/v1/ats/nope"), 404, "not-found", contains="SKU 'nope'")
    assert_problem(seeded.get("/v1/ats/sku1", params={"channel": "nope"}), 404, "not-found", contains="channel")


def test_recompute_repairs_drift(app: App, seeded: Api) -> None:
    with app.db.engine.begin() as conn:  # simulate drift in the stored ATS
        conn.execute(sa.update(t.sku_ats).values(ats='{"shop": 3}'))
    body = seeded.get("/v1/verify").json()
    assert body["ok"] is False
    assert body["mismatches"] == [
        {"what": "ats", "sku": "sku1", "where": "shop", "expected": "ats=10", "actual": "ats=3"}
    ]
    r = seeded.post("/v1/ats/recompute", params={"channel": "shop"})
    assert r.status_code == 200
    assert r.json() == {"changed": 1}
    assert seeded.get("/v1/ats/sku1").json()["ats"] == {"shop": 10}
    assert seeded.post("/v1/ats/recompute").json() == {"changed": 0}
    assert seeded.get("/v1/verify").json() == {"ok": True, "mismatches": []}
    before = snapshot(app)
    assert_problem(seeded.post("/v1/ats/recompute", params={"channel": "nope"}), 404, "not-found")
    assert snapshot(app) == before


def test_events_cursor_and_type_filter(seeded: Api) -> None:
    page = seeded.get("/v1/events", params={"limit": 3}).json()
    assert [e["type"] for e in page["events"]] == ["LocationAdded", "LocationAdded", "ChannelAdded"]
    assert page["next_after"] == page["events"][-1]["id"]
    rest = seeded.get("/v1/events", params={"after": page["next_after"]}).json()
    assert [e["type"] for e in rest["events"]] == ["SkuAdded", "MovementsRecorded", "ChannelAvailabilityChanged"]
    received = rest["events"][1]
    assert received["key"] == "sku1"
    assert [(m["kind"], m["qty"]) for m in received["data"]["movements"]] == [("receive", 10)]
    assert received["data"]["balances"] == [["sku1", "wh1", 10, 0, 0, 0, 0]]

    only = seeded.get("/v1/events", params=[("type", "MovementsRecorded"), ("type", "SkuAdded")]).json()
    assert [e["type"] for e in only["events"]] == ["SkuAdded", "MovementsRecorded"]
    empty = seeded.get("/v1/events", params={"after": 10_000}).json()
    assert empty == {"events": [], "next_after": 10_000}
    assert_problem(seeded.get("/v1/events", params={"limit": 1001}), 422, "invalid-input")
    assert_problem(seeded.get("/v1/events", params={"after": -1}), 422, "invalid-input")
    assert_problem(seeded.get("/v1/events", params={"after": "x"}), 422, "invalid-input")


def test_verify_reports_a_ledger_mismatch(app: App, seeded: Api) -> None:
    with app.db.engine.begin() as conn:  # simulate a balance the ledger does not explain
        conn.execute(sa.update(t.balances).values(on_hand=11))
    body = seeded.get("/v1/verify").json()
    assert body["ok"] is False
    # the row no longer matches the ledger, the ATS shown, nor the SKU's packed copy of its balances
    assert {m["what"] for m in body["mismatches"]} == {"balance", "ats", "packed"}


def test_ids_with_slashes_work_in_paths(seeded: Api) -> None:
    assert seeded.post("/v1/skus", json={"id": "AB/12"}).status_code == 201
    assert seeded.post("/v1/stock/receive", json={"sku": "AB/12", "location": "wh1", "qty": 2}).status_code == 201
    assert seeded.get("/v1/ats/AB/12").json() == {"sku": "AB/12", "ats": {"shop": 2}}
    assert seeded.get("/v1/ats/AB%2F12").json() == {"sku": "AB/12", "ats": {"shop": 2}}
    body = {"sku": "sku1", "location": "wh1", "to_location": "wh2", "qty": 1}
    r = seeded.post("/v1/stock/transfer", json=body, headers={"Idempotency-Key": "PO/2026/1"})
    assert r.json()["transfer_id"] == "PO/2026/1"
    assert seeded.get("/v1/transfers/PO/2026/1").json()["qty_in_transit"] == 1


def test_unexpected_error_is_a_500_problem(
    app: App, token: str, portal: BlockingPortal, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> list[Mismatch]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.engine, "verify", boom)
    api = Api(portal, create_app(app), token, raise_app_exceptions=False)
    try:
        body = assert_problem(api.get("/v1/verify"), 500, "internal-error")
        assert "disk on fire" not in body["detail"]  # internals are logged, not shown
        assert 'route="/v1/verify",status="500"' in api.get("/metrics").text
    finally:
        api.close()


def test_stock_listing_pages_in_sku_location_order(seeded: Api) -> None:
    assert seeded.post("/v1/skus", json=[{"id": "sku0", "title": "Cap"}, {"id": "sku2", "title": "Hat"}]).status_code
    for sku, loc in (("sku0", "wh2"), ("sku1", "wh2"), ("sku2", "wh1")):
        r = seeded.post("/v1/stock/receive", json={"sku": sku, "location": loc, "qty": 1})
        assert r.status_code == 201, r.text
    seen: list[tuple[str, str]] = []
    params: dict[str, str | int] = {"limit": 2}
    for _ in range(10):  # bounded: 4 rows in pages of 2
        body = seeded.get("/v1/stock", params=params).json()
        seen += [(row["sku"], row["location"]) for row in body["balances"]]
        if body["next"] is None:
            break
        params = {"limit": 2, **body["next"]}
    assert seen == [("sku0", "wh2"), ("sku1", "wh1"), ("sku1", "wh2"), ("sku2", "wh1")]
    full = seeded.get("/v1/stock").json()
    assert full["next"] is None and len(full["balances"]) == 4
    assert_problem(seeded.get("/v1/stock", params={"after_sku": "sku1"}), 422, "invalid-input", contains="together")
    assert_problem(seeded.get("/v1/stock", params={"limit": 0}), 422, "invalid-input")
