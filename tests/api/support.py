"""Helpers for the API tests: a synchronous in-process client and assertions on problems and stored state."""

from __future__ import annotations

from functools import partial
from typing import Any

import httpx
import sqlalchemy as sa
from anyio.from_thread import BlockingPortal
from fastapi import FastAPI

from accord.bootstrap import App
from accord.store import schema as t


class Api:
    """A synchronous HTTP client for an in-process FastAPI app."""

    def __init__(
        self, portal: BlockingPortal, asgi: FastAPI, token: str | None, *, raise_app_exceptions: bool = True
    ) -> None:
        self.portal = portal
        self.asgi = asgi
        self.token = token
        transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=raise_app_exceptions)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, *, auth: bool = True, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if auth and self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.portal.call(partial(self.client.request, method, url, headers=headers, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def close(self) -> None:
        self.portal.call(self.client.aclose)


TABLES = (
    t.locations,
    t.channels,
    t.channel_locations,
    t.skus,
    t.balances,
    t.ledger,
    t.transfers,
    t.sku_ats,
    t.outbox,
    t.deliveries,
    t.inbox,
)


def snapshot(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every state table: compare before/after a failed request to prove nothing was written."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with app.db.engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted(tuple(r) for r in rows)
        conn.rollback()
    return out


def assert_problem(r: httpx.Response, status: int, code: str, *, contains: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert body["type"] == f"urn:accord:problem:{code}"
    assert body["code"] == code
    assert body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == r.request.url.path
    if contains:
        assert contains in body["detail"], body["detail"]
    return body


def on_hand(api: Api, sku: str = "sku1", location: str = "wh1") -> dict[str, int]:
    r = api.get("/v1/stock", params={"sku": sku, "location": location})
    assert r.status_code == 200, r.text
    rows = r.json()["balances"]
    if not rows:
        return {"on_hand": 0, "committed": 0, "in_transit": 0, "damaged": 0, "quarantine": 0, "available": 0}
    row = dict(rows[0])
    row.pop("sku")
    row.pop("location")
    return row
