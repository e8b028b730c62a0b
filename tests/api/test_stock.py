"""Stock movements, balances, transfers, idempotency and batches."""

from __future__ import annotations

from typing import Any

import pytest

from accord.bootstrap import App

from .support import Api, assert_problem, on_hand, snapshot


def move(api: Api, slug: str, key: str | None = None, **body: Any) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    r = api.post(f"/v1/stock/{slug}", json=body, headers=headers)
    assert r.status_code == 201, r.text
    out = r.json()
    assert isinstance(out, dict)
    return out


def test_receive_answers_balances_and_ats_changes(seeded: Api) -> None:
    out = move(seeded, "receive", "rcv-1", sku="sku1", location="wh2", qty=5, ref="PO-1")
    assert out["key"] == "rcv-1"
    assert out["kind"] == "receive"
    assert out["replayed"] is False
    assert out["balances"] == {
        "wh2": {"on_hand": 5, "committed": 0, "in_transit": 0, "damaged": 0, "quarantine": 0, "available": 5}
    }
    assert out["ats_changes"] == [{"channel": "shop", "old_ats": 10, "new_ats": 15}]


def test_every_movement_kind(seeded: Api) -> None:
    api = seeded
    assert move(api, "reserve", sku="sku1", location="wh1", qty=4)["balances"]["wh1"]["committed"] == 4
    assert move(api, "release", sku="sku1", location="wh1", qty=1)["balances"]["wh1"]["committed"] == 3
    b = move(api, "ship", sku="sku1", location="wh1", qty=2, ref="order-1")["balances"]["wh1"]
    assert (b["on_hand"], b["committed"], b["available"]) == (8, 1, 7)
    assert (
        move(api, "adjust", sku="sku1", location="wh1", qty=-1, reason="shrinkage")["balances"]["wh1"]["on_hand"] == 7
    )
    assert move(api, "adjust", sku="sku1", location="wh1", qty=3, reason="found")["balances"]["wh1"]["on_hand"] == 10
    assert (
        move(api, "count", sku="sku1", location="wh1", qty=9, reason="cycle count")["balances"]["wh1"]["on_hand"] == 9
    )
    assert move(api, "damage", sku="sku1", location="wh1", qty=2)["balances"]["wh1"]["damaged"] == 2
    assert move(api, "quarantine", sku="sku1", location="wh1", qty=2)["balances"]["wh1"]["quarantine"] == 2
    assert move(api, "unquarantine", sku="sku1", location="wh1", qty=1)["balances"]["wh1"]["quarantine"] == 1
    assert move(api, "scrap", sku="sku1", location="wh1", qty=2)["balances"]["wh1"]["damaged"] == 0
    b = move(api, "scrap", sku="sku1", location="wh1", qty=1, source_bucket="quarantine")["balances"]["wh1"]
    assert b["quarantine"] == 0
    assert on_hand(api) == {
        "on_hand": 6,
        "committed": 1,
        "in_transit": 0,
        "damaged": 0,
        "quarantine": 0,
        "available": 5,
    }
    assert api.get("/v1/verify").json() == {"ok": True, "mismatches": []}


def test_transfer_and_transfer_in(seeded: Api) -> None:
    api = seeded
    out = move(api, "transfer", "tr-1", sku="sku1", location="wh1", to_location="wh2", qty=6)
    assert out["transfer_id"] == "tr-1"
    assert out["balances"]["wh1"]["on_hand"] == 4
    assert out["balances"]["wh2"]["in_transit"] == 6
    assert out["ats_changes"] == [{"channel": "shop", "old_ats": 10, "new_ats": 4}]

    transfers = api.get("/v1/transfers").json()["transfers"]
    assert transfers == [
        {
            "id": "tr-1",
            "sku": "sku1",
            "from_location": "wh1",
            "to_location": "wh2",
            "qty_shipped": 6,
            "qty_received": 0,
            "qty_in_transit": 6,
            "created_at": transfers[0]["created_at"],
            "updated_at": transfers[0]["updated_at"],
        }
    ]
    # destination and SKU come from the transfer
    out = move(api, "transfer-in", transfer_id="tr-1", qty=4)
    assert (out["sku"], out["location"], out["transfer_id"]) == ("sku1", "wh2", "tr-1")
    assert out["balances"]["wh2"]["on_hand"] == 4
    assert out["balances"]["wh2"]["in_transit"] == 2
    assert api.get("/v1/transfers", params={"open": True}).json()["transfers"][0]["qty_received"] == 4
    move(api, "transfer-in", transfer_id="tr-1", qty=2)
    assert api.get("/v1/transfers", params={"open": True}).json()["transfers"] == []
    assert api.get("/v1/transfers/tr-1").json()["qty_received"] == 6
    assert_problem(api.get("/v1/transfers/nope"), 404, "not-found")
    assert api.get("/v1/verify").json()["ok"] is True


def test_balances_listing_and_filters(seeded: Api) -> None:
    move(seeded, "receive", sku="sku1", location="wh2", qty=1)
    rows = seeded.get("/v1/stock").json()["balances"]
    assert [(r["sku"], r["location"], r["on_hand"]) for r in rows] == [("sku1", "wh1", 10), ("sku1", "wh2", 1)]
    assert len(seeded.get("/v1/stock", params={"location": "wh2"}).json()["balances"]) == 1
    assert_problem(seeded.get("/v1/stock", params={"sku": "nope"}), 404, "not-found")
    assert_problem(seeded.get("/v1/stock", params={"location": "nope"}), 404, "not-found")


# ------------------------------------------------------------------ bad input: problem body and nothing written

BAD_MOVES: list[tuple[str, dict[str, Any], int, str, str]] = [
    ("receive", {"sku": "nope", "location": "wh1", "qty": 1}, 404, "not-found", "SKU 'nope'"),
    ("receive", {"sku": "sku1", "location": "nope", "qty": 1}, 404, "not-found", "location 'nope'"),
    ("transfer", {"sku": "sku1", "location": "wh1", "to_location": "nope", "qty": 1}, 404, "not-found", "nope"),
    ("transfer-in", {"transfer_id": "nope", "qty": 1}, 404, "not-found", "transfer 'nope'"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": 0}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": -3}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": 1.5}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": 2.0}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": "2"}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": True}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": None}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1"}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "qty": 10**13}, 422, "invalid-input", "qty"),
    ("receive", {"sku": "sku1", "location": "wh1", "quantity": 1, "qty": 1}, 422, "invalid-input", "quantity"),
    ("adjust", {"sku": "sku1", "location": "wh1", "qty": 0, "reason": "x"}, 422, "invalid-input", "zero"),
    ("adjust", {"sku": "sku1", "location": "wh1", "qty": 2}, 422, "invalid-input", "reason"),
    ("count", {"sku": "sku1", "location": "wh1", "qty": -1, "reason": "x"}, 422, "invalid-input", "qty"),
    ("transfer", {"sku": "sku1", "location": "wh1", "to_location": "wh1", "qty": 1}, 422, "invalid-input", "same"),
    ("scrap", {"sku": "sku1", "location": "wh1", "qty": 1, "source_bucket": "bin"}, 422, "invalid-input", "source"),
    # more than a bucket holds
    ("reserve", {"sku": "sku1", "location": "wh1", "qty": 11}, 409, "insufficient-stock", "only 10 available"),
    ("release", {"sku": "sku1", "location": "wh1", "qty": 1}, 409, "insufficient-stock", "committed"),
    ("ship", {"sku": "sku1", "location": "wh1", "qty": 1}, 409, "insufficient-stock", "committed"),
    ("adjust", {"sku": "sku1", "location": "wh1", "qty": -11, "reason": "x"}, 409, "insufficient-stock", "only"),
    ("damage", {"sku": "sku1", "location": "wh2", "qty": 1}, 409, "insufficient-stock", "only 0"),
    ("unquarantine", {"sku": "sku1", "location": "wh1", "qty": 1}, 409, "insufficient-stock", "quarantine"),
    ("scrap", {"sku": "sku1", "location": "wh1", "qty": 1}, 409, "insufficient-stock", "damaged"),
    ("transfer", {"sku": "sku1", "location": "wh1", "to_location": "wh2", "qty": 11}, 409, "insufficient-stock", ""),
]


@pytest.mark.parametrize(("slug", "body", "status", "code", "detail"), BAD_MOVES)
def test_bad_movement_writes_nothing(
    app: App, seeded: Api, slug: str, body: dict[str, Any], status: int, code: str, detail: str
) -> None:
    before = snapshot(app)
    r = seeded.post(f"/v1/stock/{slug}", json=body, headers={"Idempotency-Key": "bad-1"})
    assert_problem(r, status, code, contains=detail)
    assert snapshot(app) == before
    # the key was not consumed by the failure
    move(seeded, "receive", "bad-1", sku="sku1", location="wh1", qty=1)


def test_count_below_committed_is_409(app: App, seeded: Api) -> None:
    move(seeded, "reserve", sku="sku1", location="wh1", qty=5)
    before = snapshot(app)
    r = seeded.post("/v1/stock/count", json={"sku": "sku1", "location": "wh1", "qty": 4, "reason": "count"})
    assert_problem(r, 409, "insufficient-stock", contains="committed")
    assert snapshot(app) == before


def test_transfer_in_more_than_in_transit_is_409(app: App, seeded: Api) -> None:
    move(seeded, "transfer", "tr-9", sku="sku1", location="wh1", to_location="wh2", qty=3)
    before = snapshot(app)
    assert_problem(
        seeded.post("/v1/stock/transfer-in", json={"transfer_id": "tr-9", "qty": 4}), 409, "insufficient-stock"
    )
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "content", [b'{"sku": "sku1", "location": "wh1", "qty": 1', b"", b"[1, 2", b"qty=1", b'{"qty": 1}}']
)
def test_malformed_json_is_422(app: App, seeded: Api, content: bytes) -> None:
    before = snapshot(app)
    r = seeded.post("/v1/stock/receive", content=content, headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "invalid-input")
    assert snapshot(app) == before


def test_bad_idempotency_key_header_is_422(app: App, seeded: Api) -> None:
    before = snapshot(app)
    r = seeded.post(
        "/v1/stock/receive", json={"sku": "sku1", "location": "wh1", "qty": 1}, headers={"Idempotency-Key": "k" * 201}
    )
    assert_problem(r, 422, "invalid-input", contains="Idempotency-Key")
    assert snapshot(app) == before


# ------------------------------------------------------------------ idempotency


def test_replay_returns_the_same_result_and_moves_nothing(app: App, seeded: Api) -> None:
    body = {"sku": "sku1", "location": "wh1", "qty": 3, "ref": "order-7"}
    first = seeded.post("/v1/stock/reserve", json=body, headers={"Idempotency-Key": "order-7"})
    assert first.status_code == 201
    before = snapshot(app)
    again = seeded.post("/v1/stock/reserve", json=body, headers={"Idempotency-Key": "order-7"})
    assert again.status_code == 200
    out = again.json()
    assert out["replayed"] is True
    assert out["ats_changes"] == []
    expected = {k: v for k, v in first.json().items() if k not in ("replayed", "ats_changes")}
    assert {k: v for k, v in out.items() if k not in ("replayed", "ats_changes")} == expected
    assert snapshot(app) == before
    assert on_hand(seeded)["committed"] == 3


def test_replayed_transfer_keeps_its_transfer_id(seeded: Api) -> None:
    body = {"sku": "sku1", "location": "wh1", "to_location": "wh2", "qty": 2}
    first = move(seeded, "transfer", "tr-k", **body)
    r = seeded.post("/v1/stock/transfer", json=body, headers={"Idempotency-Key": "tr-k"})
    assert r.status_code == 200
    assert r.json()["transfer_id"] == first["transfer_id"] == "tr-k"
    assert r.json()["balances"] == first["balances"]


@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("reserve", {"sku": "sku1", "location": "wh1", "qty": 4}),  # other quantity
        ("reserve", {"sku": "sku1", "location": "wh2", "qty": 3}),  # other location
        ("release", {"sku": "sku1", "location": "wh1", "qty": 3}),  # other kind
        ("reserve", {"sku": "sku1", "location": "wh1", "qty": 3, "ref": "other"}),  # other reference
    ],
)
def test_same_key_other_payload_is_409(app: App, seeded: Api, slug: str, body: dict[str, Any]) -> None:
    move(seeded, "reserve", "k-1", sku="sku1", location="wh1", qty=3)
    before = snapshot(app)
    r = seeded.post(f"/v1/stock/{slug}", json=body, headers={"Idempotency-Key": "k-1"})
    assert_problem(r, 409, "idempotency-key-reused", contains="k-1")
    assert snapshot(app) == before


def test_without_a_key_each_request_is_a_new_movement(seeded: Api) -> None:
    a = move(seeded, "receive", sku="sku1", location="wh1", qty=1)
    b = move(seeded, "receive", sku="sku1", location="wh1", qty=1)
    assert a["key"] != b["key"]
    assert on_hand(seeded)["on_hand"] == 12


def test_scrap_default_bucket_is_part_of_the_payload(seeded: Api) -> None:
    move(seeded, "damage", sku="sku1", location="wh1", qty=2)
    move(seeded, "scrap", "scrap-1", sku="sku1", location="wh1", qty=1)
    r = seeded.post(
        "/v1/stock/scrap",
        json={"sku": "sku1", "location": "wh1", "qty": 1, "source_bucket": "damaged"},
        headers={"Idempotency-Key": "scrap-1"},
    )
    assert r.status_code == 200  # omitted and explicit "damaged" are the same movement
    assert r.json()["replayed"] is True


# ------------------------------------------------------------------ batches


def test_batch_applies_in_order_in_one_go(app: App, seeded: Api) -> None:
    items = [
        {"kind": "receive", "sku": "sku1", "location": "wh2", "qty": 5},
        {"kind": "reserve", "sku": "sku1", "location": "wh2", "qty": 5},
        {"kind": "ship", "sku": "sku1", "location": "wh2", "qty": 2, "ref": "o-1"},
        {"kind": "transfer", "sku": "sku1", "location": "wh1", "to_location": "wh2", "qty": 4, "transfer_id": "t-1"},
        {"kind": "transfer-in", "transfer_id": "t-1", "qty": 4},  # a transfer created earlier in the same batch
        {"kind": "adjust", "sku": "sku1", "location": "wh1", "qty": -1, "reason": "broken", "key": "own-key"},
    ]
    r = seeded.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b-1"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["replayed"] is False
    assert out["count"] == 6
    assert [x["key"] for x in out["results"]] == ["b-1:0", "b-1:1", "b-1:2", "b-1:3", "b-1:4", "own-key"]
    assert out["results"][4]["location"] == "wh2"
    assert on_hand(seeded, location="wh1")["on_hand"] == 5
    assert on_hand(seeded, location="wh2") == {
        "on_hand": 7,
        "committed": 3,
        "in_transit": 0,
        "damaged": 0,
        "quarantine": 0,
        "available": 4,
    }
    assert seeded.get("/v1/verify").json()["ok"] is True

    before = snapshot(app)
    again = seeded.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b-1"})
    assert again.status_code == 200
    assert again.json()["replayed"] is True
    assert all(x["replayed"] for x in again.json()["results"])
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [
        ({"kind": "reserve", "sku": "sku1", "location": "wh1", "qty": 100}, 409, "insufficient-stock"),
        ({"kind": "receive", "sku": "nope", "location": "wh1", "qty": 1}, 404, "not-found"),
        ({"kind": "receive", "sku": "sku1", "location": "nope", "qty": 1}, 404, "not-found"),
        ({"kind": "transfer-in", "transfer_id": "nope", "qty": 1}, 404, "not-found"),
    ],
)
def test_batch_is_all_or_nothing_and_names_the_item(
    app: App, seeded: Api, bad: dict[str, Any], status: int, code: str
) -> None:
    items = [
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 5},
        {"kind": "receive", "sku": "sku1", "location": "wh2", "qty": 5},
        bad,
        {"kind": "receive", "sku": "sku1", "location": "wh2", "qty": 1},
    ]
    before = snapshot(app)
    r = seeded.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b-2"})
    assert_problem(r, status, code, contains="movement #2")
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 0},
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1.0},
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": "1"},
        {"kind": "adjust", "sku": "sku1", "location": "wh1", "qty": 0, "reason": "x"},
        {"kind": "adjust", "sku": "sku1", "location": "wh1", "qty": 1},
        {"kind": "count", "sku": "sku1", "location": "wh1", "qty": -1, "reason": "x"},
        {"kind": "teleport", "sku": "sku1", "location": "wh1", "qty": 1},
        {"kind": "receive", "location": "wh1", "qty": 1},
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1, "to_location": "wh2"},
        {"kind": "transfer", "sku": "sku1", "location": "wh1", "qty": 1},
        {"kind": "transfer-in", "qty": 1},
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1, "source_bucket": "damaged"},
    ],
)
def test_batch_invalid_item_is_422_naming_its_index(app: App, seeded: Api, bad: dict[str, Any]) -> None:
    items = [{"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 5}, bad]
    before = snapshot(app)
    body = assert_problem(seeded.post("/v1/stock/batch", json=items), 422, "invalid-input")
    assert body["detail"].startswith("[1]"), body["detail"]
    assert body["errors"][0]["loc"].startswith("[1]")
    assert snapshot(app) == before


def test_batch_limits(app: App, seeded: Api) -> None:
    before = snapshot(app)
    assert_problem(seeded.post("/v1/stock/batch", json=[]), 422, "invalid-input")
    assert_problem(seeded.post("/v1/stock/batch", json={"kind": "receive"}), 422, "invalid-input")
    too_many = [{"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1}] * 10_001
    assert_problem(seeded.post("/v1/stock/batch", json=too_many), 422, "invalid-input", contains="10000")
    assert snapshot(app) == before


def test_batch_same_key_other_payload_is_409(app: App, seeded: Api) -> None:
    items = [
        {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1},
        {"kind": "receive", "sku": "sku1", "location": "wh2", "qty": 1},
    ]
    assert seeded.post("/v1/stock/batch", json=items, headers={"Idempotency-Key": "b-3"}).status_code == 201
    before = snapshot(app)
    other_item = [items[0], {**items[1], "qty": 2}]
    r = seeded.post("/v1/stock/batch", json=other_item, headers={"Idempotency-Key": "b-3"})
    assert_problem(r, 409, "idempotency-key-reused", contains="movement #1")
    longer = [*items, {"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1}]
    r = seeded.post("/v1/stock/batch", json=longer, headers={"Idempotency-Key": "b-3"})
    assert_problem(r, 409, "idempotency-key-reused", contains="different batch")
    r = seeded.post("/v1/stock/batch", json=items[:1], headers={"Idempotency-Key": "b-3"})
    assert_problem(r, 409, "idempotency-key-reused", contains="different batch")
    assert snapshot(app) == before


def test_batch_without_header_gets_fresh_keys(seeded: Api) -> None:
    items = [{"kind": "receive", "sku": "sku1", "location": "wh1", "qty": 1}] * 3
    r = seeded.post("/v1/stock/batch", json=items)
    assert r.status_code == 201
    assert len({x["key"] for x in r.json()["results"]}) == 3
    assert on_hand(seeded)["on_hand"] == 13
