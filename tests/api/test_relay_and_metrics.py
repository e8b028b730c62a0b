"""Dead letters and redrive; /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal

from accord.api.app import create_app
from accord.app.relay import StoredEvent
from accord.app.tokens import create_token
from accord.bootstrap import App, build_app
from accord.settings import Settings
from accord.store.db import Tx

from .support import Api, assert_problem, snapshot


class Flaky:
    """An external subscriber that fails until told to work."""

    name = "erp"
    types = frozenset({"SkuAdded"})
    transactional = False

    def __init__(self) -> None:
        self.working = False
        self.seen: list[int] = []

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        if not self.working:
            raise RuntimeError("erp is down")
        self.seen.append(event.id)


@pytest.fixture
def flaky() -> Flaky:
    return Flaky()


@pytest.fixture
def relay_app(tmp_path: Path, flaky: Flaky) -> Iterator[App]:
    a = build_app(
        Settings(relay_max_attempts=1),
        database_url=f"sqlite:///{tmp_path}/r.db",
        subscribers=[flaky],
        migrate=True,
    )
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def relay_api(relay_app: App, portal: BlockingPortal) -> Iterator[Api]:
    api = Api(portal, create_app(relay_app), create_token(relay_app.db, "ops"))
    try:
        yield api
    finally:
        api.close()


def test_dead_letters_and_redrive(relay_app: App, relay_api: Api, flaky: Flaky) -> None:
    assert relay_api.post("/v1/skus", json=[{"id": "a"}, {"id": "b"}]).status_code == 201
    report = relay_app.relay.drain()
    assert report.dead == 2
    body = relay_api.get("/v1/deadletters").json()
    assert [(d["subscriber"], d["event_type"], d["key"]) for d in body["deadletters"]] == [
        ("erp", "SkuAdded", "a"),
        ("erp", "SkuAdded", "b"),
    ]
    assert "erp is down" in body["deadletters"][0]["last_error"]
    first, second = (d["event_id"] for d in body["deadletters"])
    assert relay_api.get("/v1/deadletters", params={"subscriber": "other"}).json() == {"deadletters": []}

    # still failing: stays a dead letter, and the answer says why
    r = relay_api.post(f"/v1/deadletters/erp/{first}/redrive")
    assert r.status_code == 200
    assert r.json()["delivered"] is False
    assert "erp is down" in r.json()["last_error"]

    flaky.working = True
    r = relay_api.post(f"/v1/deadletters/erp/{first}/redrive")
    assert r.json() == {"subscriber": "erp", "event_id": first, "delivered": True, "last_error": None}
    assert flaky.seen == [first]
    assert [d["event_id"] for d in relay_api.get("/v1/deadletters").json()["deadletters"]] == [second]

    before = snapshot(relay_app)
    assert_problem(relay_api.post(f"/v1/deadletters/erp/{first}/redrive"), 404, "not-found", contains="dead letter")
    assert_problem(relay_api.post(f"/v1/deadletters/nobody/{first}/redrive"), 404, "not-found", contains="nobody")
    assert_problem(relay_api.post("/v1/deadletters/erp/x/redrive"), 422, "invalid-input")
    assert snapshot(relay_app) == before


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


def test_metrics(relay_app: App, relay_api: Api) -> None:
    api = relay_api
    assert api.post("/v1/locations", json={"id": "wh1", "kind": "warehouse", "region": "eu", "country": "DE"})
    assert api.post(
        "/v1/channels",
        json={"id": "shop", "dialect": "shopify", "region": "eu", "currency": "EUR", "locations": ["wh1"]},
    )
    assert api.post("/v1/skus", json={"id": "sku1"}).status_code == 201
    body = {"sku": "sku1", "location": "wh1", "qty": 5}
    assert api.post("/v1/stock/receive", json=body, headers={"Idempotency-Key": "m-1"}).status_code == 201
    assert api.post("/v1/stock/receive", json=body, headers={"Idempotency-Key": "m-1"}).status_code == 200  # replay
    assert api.post("/v1/stock/reserve", json={**body, "qty": 2}).status_code == 201
    bad_batch = [{"kind": "ship", "sku": "sku1", "location": "wh1", "qty": 1}, {**body, "kind": "reserve", "qty": 99}]
    assert api.post("/v1/stock/batch", json=bad_batch).status_code == 409  # rolled back: not counted
    assert api.get("/v1/channels/nope").status_code == 404
    assert api.get("/v1/locations", auth=False).status_code == 401

    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, 'accord_stock_movements_total{kind="receive"}') == 1
    assert metric(text, 'accord_stock_movements_total{kind="reserve"}') == 1
    assert metric(text, 'accord_stock_movements_total{kind="ship"}') == 0
    assert metric(text, "accord_ats_changes_total") == 2
    # one LocationAdded + ChannelAdded + SkuAdded + 2 movements + 2 ATS changes, none handed to the subscriber yet
    assert metric(text, 'accord_outbox_backlog_events{subscriber="erp"}') == 7
    assert metric(text, 'accord_dead_letters{subscriber="erp"}') == 0
    assert metric(text, 'accord_relay_retrying_events{subscriber="erp"}') == 0
    assert metric(text, 'accord_http_requests_total{method="POST",route="/v1/stock/receive",status="201"}') == 1
    assert metric(text, 'accord_http_requests_total{method="POST",route="/v1/stock/receive",status="200"}') == 1
    assert metric(text, 'accord_http_requests_total{method="POST",route="/v1/stock/batch",status="409"}') == 1
    assert metric(text, 'accord_http_requests_total{method="GET",route="/v1/channels/{channel_id}",status="404"}') == 1
    assert metric(text, 'accord_http_requests_total{method="GET",route="/v1/locations",status="401"}') == 1
    assert 'accord_http_request_duration_seconds_count{method="POST",route="/v1/stock/receive"} 2.0' in text

    relay_app.relay.drain()  # max_attempts=1: the SkuAdded event becomes a dead letter
    text = api.get("/metrics").text
    assert metric(text, 'accord_outbox_backlog_events{subscriber="erp"}') == 0
    assert metric(text, 'accord_dead_letters{subscriber="erp"}') == 1


def test_each_app_has_its_own_registry(relay_app: App, portal: BlockingPortal) -> None:
    token = create_token(relay_app.db, "two")
    one, two = Api(portal, create_app(relay_app), token), Api(portal, create_app(relay_app), token)
    try:
        assert one.get("/v1/skus").status_code == 200
        assert 'route="/v1/skus"' in one.get("/metrics").text
        assert 'route="/v1/skus"' not in two.get("/metrics").text
    finally:
        one.close()
        two.close()
