"""Fixtures: a migrated SQLite App, a token, and a synchronous client driving the ASGI app in-process.

The client is httpx over ``ASGITransport`` run on an anyio blocking portal (what Starlette's TestClient does),
because this Starlette deprecates its httpx-based TestClient and warnings are errors here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.bootstrap import App, build_app
from accord.settings import Settings

from .support import Api


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    a = build_app(Settings(), database_url=f"sqlite:///{tmp_path}/t.db", migrate=True)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def token(app: App) -> str:
    return create_token(app.db, "tests")


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


@pytest.fixture
def make_api(app: App, token: str, portal: BlockingPortal) -> Iterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(*, token_: str | None = token, **kw: Any) -> Api:
        a = Api(portal, create_app(app, **kw), token_)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


@pytest.fixture
def seeded(api: Api) -> Api:
    """Two warehouses feeding one channel, one SKU with 10 on hand at wh1."""
    for loc in ("wh1", "wh2"):
        r = api.post("/v1/locations", json={"id": loc, "kind": "warehouse", "region": "eu", "country": "DE"})
        assert r.status_code == 201, r.text
    r = api.post(
        "/v1/channels",
        json={"id": "shop", "dialect": "shopify", "region": "eu", "currency": "EUR", "locations": ["wh1", "wh2"]},
    )
    assert r.status_code == 201, r.text
    assert api.post("/v1/skus", json={"id": "sku1", "title": "Shirt"}).status_code == 201
    r = api.post("/v1/stock/receive", json={"sku": "sku1", "location": "wh1", "qty": 10})
    assert r.status_code == 201, r.text
    return api
