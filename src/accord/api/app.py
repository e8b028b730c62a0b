"""The FastAPI app factory. Nothing is built at import time: call ``create_app(app)``.

Layout: ``/v1/...`` resources and ``/metrics`` need a bearer token; ``/healthz``, ``/openapi.json`` and ``/docs``
are open. Middleware, outermost first: metrics (sees every request, refused ones too) → auth → FastAPI.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Depends, FastAPI
from fastapi.security import HTTPBearer
from prometheus_client import CollectorRegistry

import accord
from accord.api import problems
from accord.api.metrics import EngineCollector, HttpMetrics, MetricsMiddleware, route_table
from accord.api.routers import ats, channels, deadletters, events, locations, pim, skus, stock, sync, system, transfers
from accord.api.routers import orders as orders_router  # orders and returns (issue 5)
from accord.api.security import MAX_BODY_BYTES, AuthMiddleware, TokenCache
from accord.bootstrap import App

API_PREFIX = "/v1"

# documents the scheme in OpenAPI; enforcement is AuthMiddleware (it runs before routing and body parsing)
_bearer_doc = HTTPBearer(auto_error=False, description="an API token from `accord token create`")


def create_app(
    app: App,
    *,
    token_cache_ttl_s: float = 5.0,
    max_body_bytes: int = MAX_BODY_BYTES,
    monotonic: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """Build the HTTP API over a wired ``App``. The caller owns ``app`` (and closes it)."""
    api = FastAPI(
        title="Accord",
        version=accord.__version__,
        description="Unified commerce execution: stock, channels and available-to-sell.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.accord = app
    registry = CollectorRegistry()
    api.state.metrics_registry = registry
    http_metrics = HttpMetrics(registry)
    registry.register(EngineCollector(app.engine, app.relay))
    api.state.tokens = tokens = TokenCache(app.db, ttl_s=token_cache_ttl_s, monotonic=monotonic)

    problems.install(api)

    v1 = APIRouter(prefix=API_PREFIX, dependencies=[Depends(_bearer_doc)], responses=problems.ERROR_RESPONSES)
    resources = (locations, channels, skus, stock, transfers, ats, events, deadletters, system, pim, orders_router)
    for module in resources:
        v1.include_router(module.router)
    api.include_router(v1)
    api.include_router(
        system.metrics_router, dependencies=[Depends(_bearer_doc)], responses={401: problems.ERROR_RESPONSES[401]}
    )
    api.include_router(system.health_router)
    api.include_router(sync.router, prefix=API_PREFIX)  # channel sync (issue 4): status, dead letters, webhooks

    templates = route_table(
        [
            ("", list(api.routes)),  # openapi.json, docs
            *((API_PREFIX, m.router.routes) for m in resources),
            ("", system.metrics_router.routes),
            ("", system.health_router.routes),
        ]
    )
    api.add_middleware(AuthMiddleware, tokens=tokens, max_body_bytes=max_body_bytes)
    api.add_middleware(MetricsMiddleware, metrics=http_metrics, routes=templates)
    return api


__all__ = ["API_PREFIX", "create_app"]
