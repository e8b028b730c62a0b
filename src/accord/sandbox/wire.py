"""Types shared by the sandbox's dialect modules: request context, reply, route table entry, dialect."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from accord.sandbox.core import ChannelState, parse_form

if TYPE_CHECKING:
    from accord.sandbox.app import Sandbox


class BadRequest(Exception):
    def __init__(self, message: str, code: str = "InvalidInput") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Ctx:
    sandbox: Sandbox
    channel: ChannelState
    method: str
    path: str  # below the channel prefix
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    channel_url: str  # absolute URL of the channel prefix, e.g. http://sandbox/amazon-us
    match: re.Match[str] | None = None

    def q(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    def q_all(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def qint(self, name: str, default: int) -> int:
        raw = self.q(name)
        try:
            return int(raw) if raw not in (None, "") else default
        except ValueError:
            raise BadRequest(f"{name} must be an integer") from None

    def json(self) -> Any:
        try:
            return orjson.loads(self.body or b"null")
        except ValueError:
            pass
        try:
            return json.loads(self.body)
        except ValueError:
            raise BadRequest("body is not valid JSON") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data

    def form(self) -> dict[str, str]:
        return parse_form(self.body)

    def arg(self, name: str) -> str:
        assert self.match is not None
        return self.match.group(name)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = "application/json"

    def content(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        try:
            return orjson.dumps(self.body, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # what orjson cannot encode (integers past 64 bits) the standard encoder can
            return json.dumps(self.body, separators=(",", ":")).encode()


Handler = Callable[[Ctx], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler
    rate_limited: bool = True
    auth: bool = True


def route(method: str, path_regex: str, operation: str, handler: Handler, **kw: bool) -> Route:
    return Route(method, re.compile(f"^{path_regex}$"), operation, handler, **kw)


@dataclass(frozen=True)
class Dialect:
    name: str
    routes: Sequence[Route]
    check_auth: Callable[[Ctx], Reply | None]
    error: Callable[[int, str, str], Any]  # (status, code, message) -> body in the dialect's error shape

    def find(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for r in self.routes:
            if r.method == method:
                m = r.pattern.match(path)
                if m:
                    return r, m
        return None

    def reply_error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, self.error(status, code, message))
