"""Bearer-token authentication as ASGI middleware, so it runs before routing and body parsing.

A request without a valid token gets 401 before its body is read: an anonymous client learns nothing
about which paths exist or how a payload would be judged. Valid tokens are cached for a short TTL
(keyed by the token's SHA-256, never the token itself); invalid ones are never cached, so a token
created a moment ago works at once and a revoked one stops working within ``ttl_s``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from anyio import to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from accord.api.metrics import route_path
from accord.api.problems import problem_response, unauthorized
from accord.app.tokens import token_name
from accord.store.db import Database

# paths anyone may call: liveness, and the API description (the project is open source; the schema is no secret)
OPEN_PATHS: frozenset[str] = frozenset({"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
# path prefixes exempt from the bearer token because they verify the caller themselves (marketplace webhooks: HMAC)
OPEN_PREFIXES: tuple[str, ...] = ("/v1/sync/webhooks/",)
MAX_BODY_BYTES = 16 * 1024 * 1024


class TokenCache:
    """Token → name lookups with a short positive-only TTL cache. Thread-safe."""

    def __init__(
        self,
        db: Database,
        *,
        ttl_s: float = 5.0,
        max_entries: int = 1024,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._now = monotonic
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._now()
        with self._lock:
            hit = self._entries.get(digest)
            if hit is not None:
                if hit[1] > now:
                    return hit[0]
                del self._entries[digest]
        name = token_name(self.db, token)
        if name is not None and self.ttl_s > 0:
            with self._lock:
                self._entries[digest] = (name, now + self.ttl_s)
                self._entries.move_to_end(digest)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return name

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def bearer_token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            text: str = bytes(value).decode("latin-1")
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Rejects every HTTP request but the open paths unless it carries a valid bearer token.

    Also refuses bodies declared larger than ``max_body_bytes`` (413) before they are read.
    The authenticated token's name is put in ``scope["state"]["token_name"]``.
    """

    def __init__(self, app: ASGIApp, tokens: TokenCache, *, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.tokens = tokens
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in OPEN_PATHS or route_path(scope).startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        token = bearer_token(scope)
        if token is None:
            await unauthorized("a bearer token is required (Authorization: Bearer <token>)", path)(scope, receive, send)
            return
        name = await to_thread.run_sync(self.tokens.lookup, token)
        if name is None:
            await unauthorized("the bearer token is not valid (unknown or revoked)", path)(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            response = problem_response(
                413,
                "request-too-large",
                "Request too large",
                f"request body is {length} bytes; the limit is {self.max_body_bytes}",
                path,
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["token_name"] = name
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
