"""Locations, channels and SKUs: creation, retries, conflicts and bad input."""

from __future__ import annotations

from typing import Any

import pytest

from accord.bootstrap import App

from .support import Api, assert_problem, snapshot

WH = {"id": "wh1", "kind": "warehouse", "region": "eu", "country": "DE"}
CH = {"id": "shop", "dialect": "shopify", "region": "eu", "currency": "EUR", "locations": ["wh1"]}


def test_locations_create_list_get(api: Api) -> None:
    r = api.post("/v1/locations", json=WH)
    assert r.status_code == 201
    assert r.json() == {**WH, "timezone": "UTC", "owner_channel": None}
    fc = {"id": "fba-de", "kind": "platform_fc", "region": "eu", "country": "DE", "owner_channel": "amazon-de"}
    assert api.post("/v1/locations", json=fc).status_code == 201
    r = api.get("/v1/locations")
    assert r.status_code == 200
    assert [loc["id"] for loc in r.json()["locations"]] == ["fba-de", "wh1"]
    assert api.get("/v1/locations/fba-de").json()["owner_channel"] == "amazon-de"
    assert_problem(api.get("/v1/locations/nope"), 404, "not-found", contains="nope")


def test_location_retry_is_harmless_and_a_different_one_conflicts(app: App, api: Api) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    before = snapshot(app)
    r = api.post("/v1/locations", json=WH)
    assert r.status_code == 200
    assert r.json()["id"] == "wh1"
    r = api.post("/v1/locations", json={**WH, "country": "FR"})
    assert_problem(r, 409, "already-exists", contains="different settings")
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**WH, "country": "Germany"}, "invalid-input"),
        ({**WH, "country": "de"}, "invalid-input"),
        ({**WH, "kind": "castle"}, "invalid-input"),
        ({**WH, "id": "has space"}, "invalid-input"),
        ({**WH, "id": ""}, "invalid-input"),
        ({**WH, "extra": 1}, "invalid-input"),
        ({**WH, "kind": "platform_fc"}, "invalid-configuration"),  # platform stock needs its owner channel
        ({**WH, "owner_channel": "amazon-de"}, "invalid-configuration"),  # only platform_fc has an owner
    ],
)
def test_location_bad_input(app: App, api: Api, body: dict[str, Any], code: str) -> None:
    before = snapshot(app)
    assert_problem(api.post("/v1/locations", json=body), 422, code)
    assert snapshot(app) == before


def test_channels_create_list_get_patch(api: Api) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    assert api.post("/v1/locations", json={**WH, "id": "wh2"}).status_code == 201
    r = api.post("/v1/channels", json=CH)
    assert r.status_code == 201, r.text
    assert r.json()["policy"] == {"buffer_units": 0, "max_qty": None, "pool_pct": 100, "zero_at_or_below": 0}
    assert [c["id"] for c in api.get("/v1/channels").json()["channels"]] == ["shop"]
    assert api.get("/v1/channels/shop").json()["locations"] == ["wh1"]
    assert_problem(api.get("/v1/channels/nope"), 404, "not-found")

    r = api.patch("/v1/channels/shop", json={"policy": {"buffer_units": 2, "max_qty": 50}})
    assert r.status_code == 200, r.text
    assert r.json()["policy"] == {"buffer_units": 2, "max_qty": 50, "pool_pct": 100, "zero_at_or_below": 0}
    # fields not given are kept; an explicit null removes the cap
    r = api.patch("/v1/channels/shop", json={"policy": {"max_qty": None}, "locations": ["wh2", "wh1"]})
    assert r.status_code == 200, r.text
    assert r.json()["policy"] == {"buffer_units": 2, "max_qty": None, "pool_pct": 100, "zero_at_or_below": 0}
    assert r.json()["locations"] == ["wh2", "wh1"]
    assert api.get("/v1/channels/shop").json() == r.json()
    assert api.patch("/v1/channels/shop", json={}).json() == r.json()


def test_channel_patch_recomputes_ats(api: Api) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    assert api.post("/v1/channels", json=CH).status_code == 201
    assert api.post("/v1/skus", json={"id": "sku1"}).status_code == 201
    assert api.post("/v1/stock/receive", json={"sku": "sku1", "location": "wh1", "qty": 10}).status_code == 201
    assert api.get("/v1/ats/sku1").json() == {"sku": "sku1", "ats": {"shop": 10}}
    assert api.patch("/v1/channels/shop", json={"policy": {"buffer_units": 3}}).status_code == 200
    assert api.get("/v1/ats/sku1", params={"channel": "shop"}).json()["ats"] == {"shop": 7}
    assert api.patch("/v1/channels/shop", json={"locations": []}).status_code == 200
    assert api.get("/v1/ats/sku1").json()["ats"] == {"shop": 0}


def test_channel_retry_is_harmless_and_a_different_one_conflicts(app: App, api: Api) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    assert api.post("/v1/channels", json=CH).status_code == 201
    before = snapshot(app)
    assert api.post("/v1/channels", json=CH).status_code == 200
    r = api.post("/v1/channels", json={**CH, "policy": {"buffer_units": 1}})
    assert_problem(r, 409, "already-exists")
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**CH, "locations": ["nowhere"]}, 404, "not-found"),
        ({**CH, "locations": ["wh1", "wh1"]}, 422, "invalid-input"),
        ({**CH, "currency": "euro"}, 422, "invalid-input"),
        ({**CH, "policy": {"pool_pct": 101}}, 422, "invalid-input"),
        ({**CH, "policy": {"buffer_units": -1}}, 422, "invalid-input"),
        ({**CH, "policy": {"buffer_units": 1.5}}, 422, "invalid-input"),
        ({**CH, "locations": ["fba-de"]}, 422, "invalid-configuration"),  # another channel's platform stock
    ],
)
def test_channel_bad_input(app: App, api: Api, body: dict[str, Any], status: int, code: str) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    fc = {"id": "fba-de", "kind": "platform_fc", "region": "eu", "country": "DE", "owner_channel": "amazon-de"}
    assert api.post("/v1/locations", json=fc).status_code == 201
    before = snapshot(app)
    assert_problem(api.post("/v1/channels", json=body), status, code)
    assert snapshot(app) == before


def test_channel_patch_bad_input(app: App, api: Api) -> None:
    assert api.post("/v1/locations", json=WH).status_code == 201
    assert api.post("/v1/channels", json=CH).status_code == 201
    before = snapshot(app)
    assert_problem(api.patch("/v1/channels/nope", json={"policy": {"buffer_units": 1}}), 404, "not-found")
    assert_problem(api.patch("/v1/channels/nope", json={"locations": ["wh1"]}), 404, "not-found")
    assert_problem(api.patch("/v1/channels/shop", json={"locations": ["nowhere"]}), 404, "not-found")
    assert_problem(api.patch("/v1/channels/shop", json={"policy": {"pool_pct": "50"}}), 422, "invalid-input")
    assert_problem(api.patch("/v1/channels/shop", json={"dialect": "ebay"}), 422, "invalid-input")
    assert snapshot(app) == before


def test_skus_one_list_retry_and_pages(app: App, api: Api) -> None:
    r = api.post("/v1/skus", json={"id": "a", "title": "A"})
    assert r.status_code == 201
    assert r.json() == {"id": "a", "title": "A"}
    assert api.post("/v1/skus", json={"id": "a", "title": "A"}).status_code == 200
    r = api.post("/v1/skus", json=[{"id": "a", "title": "A"}, {"id": "b"}, {"id": "c"}])
    assert r.status_code == 201
    assert r.json() == {"created": 2, "unchanged": 1}
    r = api.post("/v1/skus", json=[{"id": "b"}, {"id": "c"}])
    assert r.status_code == 200
    assert r.json() == {"created": 0, "unchanged": 2}

    page = api.get("/v1/skus", params={"limit": 2}).json()
    assert [s["id"] for s in page["skus"]] == ["a", "b"]
    assert page["next_after"] == "b"
    page = api.get("/v1/skus", params={"limit": 2, "after": "b"}).json()
    assert page == {"skus": [{"id": "c", "title": ""}], "next_after": None}
    assert_problem(api.get("/v1/skus", params={"limit": 1001}), 422, "invalid-input", contains="limit")
    assert_problem(api.get("/v1/skus", params={"limit": 0}), 422, "invalid-input")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"id": "a", "title": "other"}, 409, "already-exists"),
        ([{"id": "new"}, {"id": "a", "title": "other"}], 409, "already-exists"),  # all or nothing: 'new' not added
        ([{"id": "new"}, {"id": "new"}], 422, "invalid-input"),
        ([{"id": "new"}, {"id": "bad id"}], 422, "invalid-input"),
        ([], 422, "invalid-input"),
        ({"id": 5}, 422, "invalid-input"),
        ({"title": "no id"}, 422, "invalid-input"),
        ("a", 422, "invalid-input"),
    ],
)
def test_sku_bad_input(app: App, api: Api, body: Any, status: int, code: str) -> None:
    assert api.post("/v1/skus", json={"id": "a", "title": "A"}).status_code == 201
    before = snapshot(app)
    assert_problem(api.post("/v1/skus", json=body), status, code)
    assert snapshot(app) == before


def test_malformed_json_is_422(app: App, api: Api) -> None:
    before = snapshot(app)
    for path in ("/v1/locations", "/v1/channels", "/v1/skus"):
        r = api.post(path, content=b'{"id": ', headers={"Content-Type": "application/json"})
        assert_problem(r, 422, "invalid-input")
    assert snapshot(app) == before
