"""RFC 9457 problem details: every error the API returns is ``application/problem+json``.

Domain errors carry a stable ``code``; it becomes the problem ``type`` (``urn:accord:problem:<code>``)
and a ``code`` extension member, so clients can branch on it without parsing the detail text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from accord.domain.errors import (
    AccordError,
    AlreadyExists,
    IdempotencyConflict,
    InsufficientStock,
    InvalidConfiguration,
    InvalidInput,
    NotFound,
    Unauthorized,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:accord:problem:"

# domain error → (HTTP status, title); checked in order, first isinstance match wins
_DOMAIN: tuple[tuple[type[AccordError], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (InvalidInput, 422, "Invalid input"),
    (InvalidConfiguration, 422, "Invalid configuration"),
    (InsufficientStock, 409, "Insufficient stock"),
    (IdempotencyConflict, 409, "Idempotency key reused"),
    (AlreadyExists, 409, "Already exists"),
    (Unauthorized, 401, "Unauthorized"),
)

_HTTP_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Invalid input",
    500: "Internal server error",
    503: "Service unavailable",
}
_HTTP_CODES = {
    401: "unauthorized",
    404: "not-found",
    405: "method-not-allowed",
    413: "request-too-large",
    422: "invalid-input",
    500: "internal-error",
    503: "unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details (for the OpenAPI description; responses are built by ``problem_response``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str


def problem_responses(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries whose body is a problem document."""
    schema = Problem.model_json_schema()
    return {
        status: {"description": text, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status, text in descriptions.items()
    }


ERROR_RESPONSES = problem_responses(
    {401: "missing, unknown or revoked bearer token", 404: "not found", 422: "invalid input"}
)


def problem_body(status: int, code: str, title: str, detail: str, instance: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    body.update(extra)
    return body


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(problem_body(status, code, title, detail, instance, **extra)),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers) if headers else None,
    )


def unauthorized(detail: str, instance: str) -> JSONResponse:
    return problem_response(
        401, Unauthorized.code, "Unauthorized", detail, instance, headers={"WWW-Authenticate": "Bearer"}
    )


def domain_status(exc: AccordError) -> tuple[int, str]:
    for cls, status, title in _DOMAIN:
        if isinstance(exc, cls):
            return status, title
    return 400, "Request failed"


def format_loc(loc: Sequence[Any]) -> str:
    """``("body", "movements", 3, "qty")`` → ``movements[3].qty``; ``("query", "limit")`` → ``query.limit``."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "body"


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = e.get("loc", ())
        out.append({"loc": format_loc(loc), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))})
    return out


async def _accord_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AccordError)
    status, title = domain_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem_response(status, exc.code, title, str(exc), request.url.path, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    detail = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors[:10]) or "invalid request"
    if len(errors) > 10:
        detail += f"; and {len(errors) - 10} more"
    return problem_response(422, InvalidInput.code, "Invalid input", detail, request.url.path, errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    code = _HTTP_CODES.get(status, f"http-{status}")
    title = _HTTP_TITLES.get(status, "Error")
    headers = dict(exc.headers) if exc.headers else {}
    if status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem_response(status, code, title, detail, request.url.path, headers=headers or None)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "internal-error", "Internal server error", "an unexpected error occurred", request.url.path
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(AccordError, _accord_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


__all__ = [
    "ERROR_RESPONSES",
    "PROBLEM_JSON",
    "Problem",
    "install",
    "problem_body",
    "problem_response",
    "problem_responses",
    "unauthorized",
]
