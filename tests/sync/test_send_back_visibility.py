"""What goes back to the channels is visible and redrivable: `accord sync shipments|cancellations|status`,
/v1/sync/shipments|cancellations (+ redrive) and the send-back gauge on /metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from accord.api.app import create_app
from accord.api.metrics import EngineCollector
from accord.app.tokens import create_token
from accord.cli import main
from accord.connectors.base import ChannelOrder, OrderLine, ShipmentConfirmation, ShipmentLine
from accord.orders.shipments import ShipmentOutbox

from .harness import Harness


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 20, "B": 1}, (("amz", "amazon"), ("eb", "ebay")), shown={"A": 20, "B": 5})
    try:
        yield harness
    finally:
        harness.close()


def seed(h: Harness) -> None:
    """eb: one confirmation sent, one dead (unknown order); amz: one cancellation sent, one dead."""
    good = h.sandbox.place_order("eb", "A", 1)
    assert good is not None
    with h.app.db.tx() as tx:
        outbox = ShipmentOutbox(h.app.db)
        for sid, oid in (("s-ok", good.order_id), ("s-bad", "27-00000-00000")):
            cf = ShipmentConfirmation(oid, sid, "UPS", "1Z1", datetime(2026, 1, 2, tzinfo=UTC), (ShipmentLine("A", 1),))
            outbox.enqueue(tx, "eb", f"o-{sid}", cf, h.clock.now_ms())
    over = h.sandbox.place_order("amz", "B", 3)
    assert over is not None
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for oid in (over.order_id, "111-0000000-0000000"):
        h.orders.ingest_one("amz", ChannelOrder(oid, at, "Unshipped", (OrderLine("B", 3),)), "poll")

    async def go(w: Any) -> None:
        await w.send_shipments()
        await w.send_cancellations()

    h.run(go)
    h.clock.advance(60_000)  # Amazon processed the cancellation feed; the next round reads its report
    h.run(lambda w: w.send_cancellations())


def cli(capsys: pytest.CaptureFixture[str], h: Harness, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--database-url", h.app.db.url, *argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_lists_filters_and_redrives(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    seed(h)
    code, out, _ = cli(capsys, h, "sync", "shipments", "--json")
    assert code == 0
    assert {(r["shipment_id"], r["state"]) for r in json.loads(out)["shipments"]} == {
        ("s-ok", "sent"),
        ("s-bad", "dead"),
    }
    code, out, _ = cli(capsys, h, "sync", "shipments", "--state", "dead", "--json")
    (dead,) = json.loads(out)["shipments"]
    assert dead["shipment_id"] == "s-bad" and dead["last_error"].startswith("rejected")
    code, out, _ = cli(capsys, h, "sync", "cancellations", "--channel", "amz", "--state", "dead", "--json")
    (c,) = json.loads(out)["cancellations"]
    assert c["channel_order_id"] == "111-0000000-0000000" and "Invalid orderId" in c["body"]
    code, out, _ = cli(capsys, h, "sync", "status", "--json")
    by_ch = {r["channel"]: r for r in json.loads(out)["channels"]}
    assert by_ch["eb"]["shipments"] == {"pending": 0, "sent": 1, "dead": 1, "covered": 0}
    assert by_ch["amz"]["cancellations"] == {"pending": 0, "submitted": 0, "sent": 1, "dead": 1}
    code, out, _ = cli(capsys, h, "sync", "status")
    assert code == 0 and "0/1/1" in out

    code, out, _ = cli(capsys, h, "sync", "shipments", "--redrive", "--shipment", "s-bad", "--state", "pending")
    assert code == 0 and "redriven: 1" in out and "s-bad" in out

    code, _, err = cli(capsys, h, "sync", "shipments", "--state", "lost")
    assert code == 2 and err.count("\n") == 1 and "unknown ship confirmation state 'lost'" in err


def api_call(h: Harness, token: str, method: str, url: str, body: Any = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(h.app))
        async with httpx.AsyncClient(transport=transport, base_url="http://accord") as client:
            return await client.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})

    return asyncio.run(go())


def test_api_lists_and_redrives(h: Harness) -> None:
    seed(h)
    token = create_token(h.app.db, "send-back")
    r = api_call(h, token, "GET", "/v1/sync/shipments?state=dead")
    assert r.status_code == 200 and [s["shipment_id"] for s in r.json()["shipments"]] == ["s-bad"]
    r = api_call(h, token, "GET", "/v1/sync/cancellations?channel=amz")
    assert sorted(c["state"] for c in r.json()["cancellations"]) == ["dead", "sent"]
    r = api_call(h, token, "POST", "/v1/sync/cancellations/redrive", {"channel": "amz"})
    assert r.json() == {"redriven": 1}
    r = api_call(h, token, "GET", "/v1/sync/cancellations?state=pending")
    assert [c["channel_order_id"] for c in r.json()["cancellations"]] == ["111-0000000-0000000"]
    r = api_call(h, token, "GET", "/v1/sync/shipments?state=lost")
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


def test_metrics_count_pending_sent_and_dead(h: Harness) -> None:
    seed(h)
    registry = CollectorRegistry()
    registry.register(EngineCollector(h.engine, h.relay))
    text = generate_latest(registry).decode()
    assert 'accord_sync_send_back{channel="eb",kind="shipments",state="sent"} 1.0' in text
    assert 'accord_sync_send_back{channel="eb",kind="shipments",state="dead"} 1.0' in text
    assert 'accord_sync_send_back{channel="amz",kind="cancellations",state="dead"} 1.0' in text
    assert 'accord_sync_send_back{channel="amz",kind="cancellations",state="pending"} 0.0' in text
