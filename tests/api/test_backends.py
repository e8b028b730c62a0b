"""The API's own database reads and the core paths it drives, on every backend (``backend`` from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.bootstrap import App, build_app
from accord.settings import Settings

from .support import Api, assert_problem, on_hand, snapshot


@pytest.fixture
def backend_app(backend: Any) -> Iterator[App]:
    a = build_app(Settings(), database_url=backend.url)
    try:
        yield a
    finally:
        a.close()


def test_core_flow(backend_app: App, portal: BlockingPortal) -> None:
    api = Api(portal, create_app(backend_app), create_token(backend_app.db, "ci"))
    try:
        assert api.post("/v1/locations", json={"id": "wh1", "kind": "warehouse", "region": "eu", "country": "DE"})
        assert api.post("/v1/locations", json={"id": "wh2", "kind": "store", "region": "eu", "country": "DE"})
        ch = {"id": "shop", "dialect": "shopify", "region": "eu", "currency": "EUR", "locations": ["wh1", "wh2"]}
        assert api.post("/v1/channels", json=ch).status_code == 201
        assert api.post("/v1/channels", json=ch).status_code == 200
        assert api.post("/v1/skus", json=[{"id": "sku1"}, {"id": "sku2"}]).status_code == 201

        items = [
            {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 10},
            {"kind": "transfer", "sku": "sku1", "location": "wh1", "to_location": "wh2", "qty": 4},
            {"kind": "reserve", "sku": "sku1", "location": "wh1", "qty": 6},
        ]
        r = api.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b"})
        assert r.status_code == 201, r.text
        assert api.post("/v1/stock/transfer-in", json={"transfer_id": "b:1", "qty": 4}).status_code == 201

        before = snapshot(backend_app)
        again = api.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b"})
        assert again.status_code == 200
        assert again.json()["results"][1]["balances"]["wh2"]["on_hand"] == 4  # current balances on a replay
        assert_problem(
            api.post("/v1/stock/batch", json=items[:2], headers={"Idempotency-Key": "b"}), 409, "idempotency-key-reused"
        )
        bad = [{"kind": "receive", "sku": "sku2", "location": "wh1", "qty": 1}, {**items[2], "key": "r2"}]
        assert_problem(api.post("/v1/stock/batch", json=bad), 409, "insufficient-stock", contains="movement #1")
        assert snapshot(backend_app) == before

        assert on_hand(api)["committed"] == 6
        assert api.get("/v1/ats/sku1").json()["ats"] == {"shop": 4}
        assert api.get("/v1/verify").json() == {"ok": True, "mismatches": []}
        assert 'accord_stock_movements_total{kind="transfer_in"} 1.0' in api.get("/metrics").text
        assert api.get("/healthz", auth=False).json() == {"status": "ok"}
    finally:
        api.close()
