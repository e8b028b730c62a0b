"""Bearer-token authentication: every endpoint but /healthz and the API description needs a valid token."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from accord.app.tokens import create_token, revoke_token
from accord.bootstrap import App

from .support import Api, assert_problem, snapshot

PROTECTED = [
    ("GET", "/v1/locations"),
    ("GET", "/v1/channels"),
    ("GET", "/v1/skus"),
    ("GET", "/v1/stock"),
    ("GET", "/v1/transfers"),
    ("GET", "/v1/events"),
    ("GET", "/v1/deadletters"),
    ("GET", "/v1/verify"),
    ("GET", "/v1/ats/sku1"),
    ("POST", "/v1/stock/receive"),
    ("POST", "/v1/stock/batch"),
    ("POST", "/v1/ats/recompute"),
    ("GET", "/metrics"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_is_401_with_challenge(api: Api, method: str, path: str) -> None:
    r = api.request(method, path, auth=False)
    assert_problem(r, 401, "unauthorized", contains="bearer token is required")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", ["Bearer acc_not-a-real-token", "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer", "acc_x"]
)
def test_bad_token_is_401(api: Api, header: str) -> None:
    r = api.get("/v1/locations", headers={"Authorization": header})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_auth_comes_before_body_parsing(app: App, api: Api) -> None:
    before = snapshot(app)
    r = api.post("/v1/stock/receive", auth=False, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_problem(r, 401, "unauthorized")
    r = api.post("/v1/stock/receive", auth=False, json={"sku": "x", "location": "y", "qty": 1})
    assert_problem(r, 401, "unauthorized")
    assert snapshot(app) == before


def test_unknown_path_without_token_is_401_not_404(api: Api) -> None:
    assert_problem(api.get("/v1/nothing-here", auth=False), 401, "unauthorized")
    assert_problem(api.get("/v1/nothing-here"), 404, "not-found")


def test_valid_token_works(api: Api) -> None:
    assert api.get("/v1/locations").status_code == 200


def test_revoked_token_is_refused_once_the_cache_expires(app: App, make_api: Callable[..., Api]) -> None:
    now = [1000.0]
    token = create_token(app.db, "short-lived")
    api = make_api(token_=token, token_cache_ttl_s=5.0, monotonic=lambda: now[0])
    assert api.get("/v1/locations").status_code == 200
    revoke_token(app.db, "short-lived")
    now[0] += 5.1  # past the cache TTL
    assert_problem(api.get("/v1/locations"), 401, "unauthorized")


def test_revoked_token_without_cache_is_refused_at_once(app: App, make_api: Callable[..., Api]) -> None:
    token = create_token(app.db, "no-cache")
    api = make_api(token_=token, token_cache_ttl_s=0)
    assert api.get("/v1/locations").status_code == 200
    revoke_token(app.db, "no-cache")
    assert_problem(api.get("/v1/locations"), 401, "unauthorized")


def test_new_token_works_at_once(app: App, api: Api) -> None:
    # invalid tokens are never cached, so a token created after a failed attempt works immediately
    assert api.get("/v1/locations", auth=False, headers={"Authorization": "Bearer acc_later"}).status_code == 401
    later = create_token(app.db, "later")
    assert api.get("/v1/locations", headers={"Authorization": f"Bearer {later}"}).status_code == 200


def test_healthz_and_api_description_are_open(api: Api) -> None:
    r = api.get("/healthz", auth=False)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = api.get("/openapi.json", auth=False)
    assert r.status_code == 200
    spec = r.json()
    assert "/v1/stock/batch" in spec["paths"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.get("/docs", auth=False).status_code == 200


def test_oversized_body_is_413(app: App, make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=100)
    before = snapshot(app)
    r = api.post("/v1/skus", json=[{"id": f"sku-{i}"} for i in range(20)])
    assert_problem(r, 413, "request-too-large")
    assert snapshot(app) == before
