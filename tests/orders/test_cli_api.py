"""`accord order|rma|bench routing` and the /v1/orders API: happy path and bad input (exit 2, one line)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.cli import main
from accord.store import orders_tables as ot
from accord.store import schema as t

from .conftest import World


def run(capsys: pytest.CaptureFixture[str], w: World, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--database-url", w.app.db.url, *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_order_and_rma_happy_path(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, world, "order", "place", "--channel", "shop", "--line", "A:2:1500", "--id", "C1", "--json"
    )
    assert code == 0, out
    d = json.loads(out)
    assert d["status"] == "routed"
    loc = d["allocations"][0]["location"]
    code, out, _ = run(capsys, world, "order", "explain", "C1")
    assert code == 0 and "line 1 (2 × A)" in out
    assert (
        run(capsys, world, "order", "ship", "C1", "--location", loc, "--carrier", "UPS", "--tracking", "1Z999AA1")[0]
        == 0
    )
    assert run(capsys, world, "order", "deliver", "C1")[0] == 0
    code, out, _ = run(capsys, world, "order", "health", "--channel", "shop", "--json")
    assert code == 0 and json.loads(out)["channels"][0]["orders"] == 1
    assert run(capsys, world, "order", "sla", "--json")[0] == 0
    assert run(capsys, world, "order", "list")[0] == 0
    code, out, _ = run(capsys, world, "rma", "create", "C1", "--item", "A:1", "--id", "RC1", "--json")
    assert code == 0 and json.loads(out)["status"] == "requested"
    assert run(capsys, world, "rma", "receive", "RC1", "--sku", "A", "--qty", "1", "--location", "WH-W")[0] == 0
    code, out, _ = run(
        capsys, world, "rma", "grade", "RC1", "--sku", "A", "--qty", "1", "--grade", "resellable", "--json"
    )
    assert code == 0 and json.loads(out)["refund_state"] == "due"
    assert run(capsys, world, "rma", "show", "RC1")[0] == 0


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (("order", "place", "--channel", "shop", "--line", "NOPE:1"), "unknown SKU 'NOPE'"),
        (("order", "place", "--channel", "nowhere", "--line", "A:1"), "unknown channel 'nowhere'"),
        (("order", "place", "--channel", "shop", "--line", "A:0"), "quantity must be a positive whole number"),
        (("order", "place", "--channel", "shop", "--line", "A:two"), "quantity on line 1 must be a whole number"),
        (("order", "deliver", "NOPE"), "unknown order 'NOPE'"),
        (("order", "cancel", "X", "--reason", "bored"), "--reason must be one of"),
        (("rma", "grade", "R", "--sku", "A", "--qty", "1", "--grade", "shiny"), "--grade must be one of"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    world: World, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], text: str
) -> None:
    before = (world.count(ot.orders), world.count(t.outbox))
    code, _, err = run(capsys, world, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and text in err
    assert (world.count(ot.orders), world.count(t.outbox)) == before


def test_cli_invalid_transition_and_rma_window(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, world, "order", "place", "--channel", "shop", "--line", "A:1", "--id", "C2")[0] == 0
    code, _, err = run(capsys, world, "order", "deliver", "C2")
    assert code == 2 and "order cannot go from routed to delivered" in err


def test_cli_bench_routing_small(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, world, "bench", "routing", "--json", "--orders", "200", "--mip-sample", "20")
    assert code == 0
    d = json.loads(out)
    for key in ("route_s", "shipments_per_order", "cost_per_order", "mip_sample_gap_pct"):
        assert key in d
    assert d["baseline_shipments_per_order"] >= d["shipments_per_order"]


def api_call(app: Any, token: str, method: str, url: str, body: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://accord") as client:
            return await client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def test_api_orders_and_returns(world: World) -> None:
    api = create_app(world.app)
    token = create_token(world.app.db, "orders-tests")
    r = api_call(api, token, "POST", "/v1/orders", {"channel": "shop", "id": "H1", "lines": [{"sku": "A", "qty": 1}]})
    assert r.status_code == 201, r.text
    loc = r.json()["allocations"][0]["location"]
    assert api_call(api, token, "GET", "/v1/orders/H1/explain").json()["explanation"].startswith("order H1")
    r = api_call(api, token, "POST", "/v1/orders/H1/deliver")
    assert r.status_code == 422 and "from routed to delivered" in r.json()["detail"]
    body = {"location": loc, "carrier": "DHL", "tracking": "JD0146000012345678"}
    assert api_call(api, token, "POST", "/v1/orders/H1/ship", body).status_code == 200
    assert api_call(api, token, "POST", "/v1/orders/H1/deliver").json()["status"] == "delivered"
    r = api_call(api, token, "POST", "/v1/rmas", {"order_id": "H1", "items": {"A": 2}})
    assert r.status_code == 422 and "only 1 shipped" in r.json()["detail"]
    r = api_call(api, token, "POST", "/v1/rmas", {"order_id": "H1", "items": {"A": 1}, "id": "HR1"})
    assert r.status_code == 201, r.text
    r = api_call(api, token, "POST", "/v1/rmas/HR1/receive", {"sku": "A", "qty": 1, "location": loc})
    assert r.json()["status"] == "received"
    bad = api_call(api, token, "POST", "/v1/orders", {"channel": "shop", "lines": [{"sku": "NOPE", "qty": 1}]})
    assert bad.status_code == 404 and "unknown SKU 'NOPE'" in bad.json()["detail"]
    assert api_call(api, token, "GET", "/v1/orders/health?channel=shop").json()["channels"][0]["orders"] == 1
