"""Stock: movements (one per request, or a batch applied all or nothing) and balances.

Idempotency: the ``Idempotency-Key`` header becomes the movement's key (in a batch, ``<header>:<index>``
unless the item brings its own ``key``); without it a fresh key is generated. The engine stores each key
with a fingerprint of the movement, in the same transaction as the movement, so a retry with the same key
and payload is answered ``200`` with ``replayed: true`` and moves nothing, and the same key with another
payload is ``409``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import sqlalchemy as sa
from fastapi import APIRouter, Body, Header, Query, Response, status
from pydantic import BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from accord.api.deps import AppDep
from accord.api.models import (
    MAX_QTY,
    BalanceOut,
    CountQty,
    Ident,
    Key,
    MoveResultOut,
    PositiveQty,
    RequestModel,
    SignedQty,
    Text,
)
from accord.api.problems import problem_responses
from accord.app.engine import MAX_BATCH, MoveResult
from accord.bootstrap import App
from accord.domain.errors import AccordError, IdempotencyConflict, InvalidInput
from accord.domain.ledger import Balance, Movement, MovementKind
from accord.store import schema as t

router = APIRouter(prefix="/stock", tags=["stock"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retry-safe key: the same key and payload again is answered with replayed=true and moves "
        "nothing; the same key with another payload is 409. Generated when absent.",
    ),
]

# URL slug → movement kind; batch items also accept the engine's own names (transfer_out, transfer_in)
SLUGS: dict[str, MovementKind] = {
    "receive": MovementKind.RECEIVE,
    "adjust": MovementKind.ADJUST,
    "count": MovementKind.COUNT,
    "reserve": MovementKind.RESERVE,
    "release": MovementKind.RELEASE,
    "ship": MovementKind.SHIP,
    "transfer": MovementKind.TRANSFER_OUT,
    "transfer-in": MovementKind.TRANSFER_IN,
    "damage": MovementKind.DAMAGE,
    "quarantine": MovementKind.QUARANTINE,
    "unquarantine": MovementKind.UNQUARANTINE,
    "scrap": MovementKind.SCRAP,
}
KINDS: dict[str, MovementKind] = {
    **SLUGS,
    "transfer_out": MovementKind.TRANSFER_OUT,
    "transfer_in": MovementKind.TRANSFER_IN,
}
BatchKind = Literal[
    "receive",
    "adjust",
    "count",
    "reserve",
    "release",
    "ship",
    "transfer",
    "transfer_out",
    "transfer-in",
    "transfer_in",
    "damage",
    "quarantine",
    "unquarantine",
    "scrap",
]
ScrapSource = Literal["damaged", "quarantine", "on_hand"]


@dataclass(frozen=True, slots=True)
class MoveSpec:
    """A validated movement request before its key and (for transfer_in) destination are known."""

    kind: MovementKind
    qty: int
    sku: str | None = None
    location: str | None = None
    to_location: str | None = None
    transfer_id: str | None = None
    reason: str | None = None
    ref: str | None = None
    source_bucket: str | None = None
    key: str | None = None


# ---------------------------------------------------------------------- request models (one per shape)


class _MoveFields(RequestModel):
    sku: Ident
    location: Ident
    reason: Text | None = None
    ref: Text | None = Field(default=None, description="order, RMA or document reference")


class StockMoveIn(_MoveFields):
    qty: PositiveQty

    def spec(self, kind: MovementKind) -> MoveSpec:
        return MoveSpec(kind, self.qty, self.sku, self.location, reason=self.reason, ref=self.ref)


class AdjustIn(_MoveFields):
    qty: SignedQty
    reason: Text

    @model_validator(mode="after")
    def _non_zero(self) -> Self:
        if self.qty == 0:
            raise PydanticCustomError("non_zero", "adjust quantity must not be zero")
        return self

    def spec(self) -> MoveSpec:
        return MoveSpec(MovementKind.ADJUST, self.qty, self.sku, self.location, reason=self.reason, ref=self.ref)


class CountIn(_MoveFields):
    qty: CountQty = Field(description="the counted on-hand quantity")
    reason: Text

    def spec(self) -> MoveSpec:
        return MoveSpec(MovementKind.COUNT, self.qty, self.sku, self.location, reason=self.reason, ref=self.ref)


class TransferOutIn(_MoveFields):
    location: Ident = Field(description="source location")
    to_location: Ident
    qty: PositiveQty
    transfer_id: Key | None = Field(default=None, description="defaults to the movement's idempotency key")

    def spec(self) -> MoveSpec:
        return MoveSpec(
            MovementKind.TRANSFER_OUT,
            self.qty,
            self.sku,
            self.location,
            to_location=self.to_location,
            transfer_id=self.transfer_id,
            reason=self.reason,
            ref=self.ref,
        )


class TransferReceiveIn(RequestModel):
    transfer_id: Key
    qty: PositiveQty
    reason: Text | None = None
    ref: Text | None = None

    def spec(self) -> MoveSpec:
        return MoveSpec(
            MovementKind.TRANSFER_IN, self.qty, transfer_id=self.transfer_id, reason=self.reason, ref=self.ref
        )


class ScrapIn(_MoveFields):
    qty: PositiveQty
    source_bucket: ScrapSource = "damaged"

    def spec(self) -> MoveSpec:
        return MoveSpec(
            MovementKind.SCRAP,
            self.qty,
            self.sku,
            self.location,
            reason=self.reason,
            ref=self.ref,
            source_bucket=self.source_bucket,
        )


class BatchItem(RequestModel):
    """One movement of a batch. Which fields apply depends on ``kind`` (as in the single-movement endpoints)."""

    kind: BatchKind
    qty: Annotated[int, Field(strict=True, ge=-MAX_QTY, le=MAX_QTY)]
    sku: Ident | None = Field(default=None, description="transfer-in: taken from the transfer when omitted")
    location: Ident | None = Field(default=None, description="transfer-in: the transfer's destination when omitted")
    to_location: Ident | None = None
    transfer_id: Key | None = None
    reason: Text | None = None
    ref: Text | None = None
    source_bucket: ScrapSource | None = None
    key: Key | None = Field(default=None, description="this item's idempotency key (default <header>:<index>)")

    @model_validator(mode="after")
    def _rules(self) -> Self:
        kind = KINDS[self.kind]
        problem = _item_problem(kind, self)
        if problem:
            raise PydanticCustomError("movement_rule", problem)
        return self

    def spec(self) -> MoveSpec:
        kind = KINDS[self.kind]
        return MoveSpec(
            kind,
            self.qty,
            self.sku,
            self.location,
            to_location=self.to_location,
            transfer_id=self.transfer_id,
            reason=self.reason,
            ref=self.ref,
            source_bucket=(self.source_bucket or "damaged") if kind is MovementKind.SCRAP else None,
            key=self.key,
        )


def _item_problem(kind: MovementKind, item: BatchItem) -> str | None:
    k = kind.value
    if kind is MovementKind.ADJUST:
        if item.qty == 0:
            return "adjust quantity must not be zero"
    elif kind is MovementKind.COUNT:
        if item.qty < 0:
            return f"counted quantity must be zero or more, got {item.qty}"
    elif item.qty <= 0:
        return f"quantity must be positive, got {item.qty}"
    if kind is not MovementKind.TRANSFER_IN and (item.sku is None or item.location is None):
        return f"{k} needs sku and location"
    if kind in (MovementKind.ADJUST, MovementKind.COUNT) and not item.reason:
        return f"{k} needs a reason"
    if kind is MovementKind.TRANSFER_OUT and item.to_location is None:
        return "transfer needs to_location"
    if kind is not MovementKind.TRANSFER_OUT and item.to_location is not None:
        return f"to_location does not apply to {k}"
    if kind is MovementKind.TRANSFER_IN and item.transfer_id is None:
        return "transfer_in needs transfer_id"
    if kind not in (MovementKind.TRANSFER_OUT, MovementKind.TRANSFER_IN) and item.transfer_id is not None:
        return f"transfer_id does not apply to {k}"
    if kind is not MovementKind.SCRAP and item.source_bucket is not None:
        return f"source_bucket does not apply to {k}"
    return None


# ---------------------------------------------------------------------- response models


class BatchOut(BaseModel):
    replayed: bool = Field(description="true when every movement of the batch had been applied before")
    count: int
    results: list[MoveResultOut]


class StockRow(BalanceOut):
    sku: str
    location: str


class StockCursor(BaseModel):
    after_sku: str
    after_location: str


class StockList(BaseModel):
    balances: list[StockRow]
    next: StockCursor | None = Field(
        default=None, description="pass as after_sku/after_location for the next page; null on the last page"
    )


# ---------------------------------------------------------------------- applying movements


def _movement(app: App, spec: MoveSpec, key: str, known_transfers: dict[str, tuple[str, str]]) -> Movement:
    sku, location = spec.sku, spec.location
    if spec.kind is MovementKind.TRANSFER_IN and (sku is None or location is None):
        assert spec.transfer_id is not None
        known = known_transfers.get(spec.transfer_id)
        if known is None:
            tr = app.engine.transfer(spec.transfer_id)
            known = known_transfers[spec.transfer_id] = (str(tr["sku_id"]), str(tr["to_location"]))
        sku = sku or known[0]
        location = location or known[1]
    assert sku is not None and location is not None
    return Movement(
        spec.kind,
        sku,
        location,
        spec.qty,
        key,
        to_location=spec.to_location,
        transfer_id=spec.transfer_id,
        reason=spec.reason,
        ref=spec.ref,
        source_bucket=spec.source_bucket,
    )


def _current_balances(app: App, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Balance]:
    """Balances now, for answering replays (a read; nothing is written)."""
    wanted = set(pairs)
    skus = sorted({s for s, _ in wanted})
    b = t.balances
    out: dict[tuple[str, str], Balance] = {}
    with app.db.engine.connect() as conn:
        for i in range(0, len(skus), 500):
            q = sa.select(
                b.c.sku_id, b.c.location_id, b.c.on_hand, b.c.committed, b.c.in_transit, b.c.damaged, b.c.quarantine
            )
            for r in conn.execute(q.where(b.c.sku_id.in_(skus[i : i + 500]))):
                if (r[0], r[1]) in wanted:
                    out[(r[0], r[1])] = Balance(int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))
        conn.rollback()
    return out


def _results(app: App, movements: Sequence[Movement], results: Sequence[MoveResult]) -> list[MoveResultOut]:
    """Engine results as API models; a replay is given its transfer id and the current balances."""
    replays = [(m, r) for m, r in zip(movements, results, strict=True) if r.replayed]
    if replays:
        places: dict[int, list[str]] = {}
        for i, (m, _) in enumerate(replays):
            places[i] = [m.location] + ([m.to_location] if m.to_location else [])
        now = _current_balances(app, ((m.sku, loc) for i, (m, _) in enumerate(replays) for loc in places[i]))
        for i, (m, r) in enumerate(replays):
            r.balances = {loc: now.get((m.sku, loc), Balance()) for loc in places[i]}
            if m.kind is MovementKind.TRANSFER_OUT:
                r.transfer_id = m.transfer_id or m.key
            elif m.kind is MovementKind.TRANSFER_IN:
                r.transfer_id = m.transfer_id
    return [MoveResultOut.model_validate(r.as_dict()) for r in results]


def _apply_one(app: App, spec: MoveSpec, header_key: str | None, response: Response) -> MoveResultOut:
    key = header_key or app.engine.ids.new("api")
    m = _movement(app, spec, key, {})
    results = app.engine.move_batch([m])
    if results[0].replayed:
        response.status_code = status.HTTP_200_OK
    return _results(app, [m], results)[0]


def _check_batch_key(app: App, header_key: str, derived: dict[int, str], total: int) -> None:
    """Same header, different batch → 409, also when only the length differs (which per-item keys can't see).

    Looks for the derived keys of this batch plus ``<header>:<total>``: a previous batch under this header
    left either all of them but the last (same shape) or none (fresh key); anything else is another batch.
    """
    if not derived:
        return
    probe = [*derived.values(), f"{header_key}:{total}"]
    lg = t.ledger
    found: set[str] = set()
    with app.db.engine.connect() as conn:
        for i in range(0, len(probe), 500):
            q = sa.select(lg.c.idem_key).where(lg.c.leg == 0, lg.c.idem_key.in_(probe[i : i + 500]))
            found.update(r[0] for r in conn.execute(q))
        conn.rollback()
    if found and found != set(derived.values()):
        raise IdempotencyConflict(f"Idempotency-Key {header_key!r} was already used for a different batch")


# ---------------------------------------------------------------------- endpoints

_MOVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "replay: this idempotency key was applied before with the same payload; nothing moved"},
    **problem_responses(
        {
            404: "unknown SKU, location or transfer",
            409: "insufficient stock, or the idempotency key was used for another payload",
            422: "invalid input",
        }
    ),
}

_SIMPLE = {
    "receive": "Receive stock into on hand.",
    "reserve": "Reserve available stock (on hand → committed), e.g. for an order.",
    "release": "Release a reservation (committed → available).",
    "ship": "Ship reserved stock (leaves on hand and committed).",
    "damage": "Mark available stock as damaged.",
    "quarantine": "Move available stock to quarantine (awaiting inspection).",
    "unquarantine": "Return quarantined stock to on hand.",
}


def _add_simple_route(slug: str, doc: str) -> None:
    kind = SLUGS[slug]

    def endpoint(
        body: StockMoveIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
    ) -> MoveResultOut:
        return _apply_one(app, body.spec(kind), idempotency_key, response)

    router.add_api_route(
        f"/{slug}",
        endpoint,
        methods=["POST"],
        name=f"stock_{slug.replace('-', '_')}",
        summary=doc,
        status_code=status.HTTP_201_CREATED,
        response_model=MoveResultOut,
        responses=_MOVE_RESPONSES,
    )


for _slug, _doc in _SIMPLE.items():
    _add_simple_route(_slug, _doc)


@router.post("/adjust", status_code=status.HTTP_201_CREATED, response_model=MoveResultOut, responses=_MOVE_RESPONSES)
def stock_adjust(
    body: AdjustIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
) -> MoveResultOut:
    """Change on hand by a signed, non-zero quantity, with a reason."""
    return _apply_one(app, body.spec(), idempotency_key, response)


@router.post("/count", status_code=status.HTTP_201_CREATED, response_model=MoveResultOut, responses=_MOVE_RESPONSES)
def stock_count(
    body: CountIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
) -> MoveResultOut:
    """Record a physical count: on hand becomes the counted quantity (never below what is committed)."""
    return _apply_one(app, body.spec(), idempotency_key, response)


@router.post("/transfer", status_code=status.HTTP_201_CREATED, response_model=MoveResultOut, responses=_MOVE_RESPONSES)
def stock_transfer(
    body: TransferOutIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
) -> MoveResultOut:
    """Ship stock between locations: on hand at the source → in transit at the destination."""
    return _apply_one(app, body.spec(), idempotency_key, response)


@router.post(
    "/transfer-in", status_code=status.HTTP_201_CREATED, response_model=MoveResultOut, responses=_MOVE_RESPONSES
)
def stock_transfer_in(
    body: TransferReceiveIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
) -> MoveResultOut:
    """Receive (part of) a transfer at its destination: in transit → on hand. SKU and location come from it."""
    return _apply_one(app, body.spec(), idempotency_key, response)


@router.post("/scrap", status_code=status.HTTP_201_CREATED, response_model=MoveResultOut, responses=_MOVE_RESPONSES)
def stock_scrap(
    body: ScrapIn, app: AppDep, response: Response, idempotency_key: IdempotencyKey = None
) -> MoveResultOut:
    """Write stock off from damaged (default), quarantine or available on hand."""
    return _apply_one(app, body.spec(), idempotency_key, response)


@router.post(
    "/batch",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchOut,
    responses={**_MOVE_RESPONSES, 200: {"description": "every movement was a replay; nothing moved"}},
)
def stock_batch(
    body: Annotated[list[BatchItem], Body(min_length=1, max_length=MAX_BATCH)],
    app: AppDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> BatchOut:
    """Apply a list of movements in order, all or nothing, in one transaction.

    An error names the failing item (``movement #3: ...``) and nothing of the batch is applied.
    """
    derived: dict[int, str] = {}
    keys: list[str] = []
    for i, item in enumerate(body):
        if item.key is not None:
            keys.append(item.key)
        elif idempotency_key is not None:
            derived[i] = f"{idempotency_key}:{i}"
            keys.append(derived[i])
        else:
            keys.append(app.engine.ids.new("api"))
    if idempotency_key is not None:
        _check_batch_key(app, idempotency_key, derived, len(body))
    movements: list[Movement] = []
    transfers: dict[str, tuple[str, str]] = {}  # created earlier in this batch: id -> (sku, destination)
    for i, (item, key) in enumerate(zip(body, keys, strict=True)):
        spec = item.spec()
        try:
            m = _movement(app, spec, key, transfers)
        except AccordError as exc:
            exc.args = (f"movement #{i}: {exc}",)
            raise
        if m.kind is MovementKind.TRANSFER_OUT and m.to_location is not None:
            transfers[m.transfer_id or m.key] = (m.sku, m.to_location)
        movements.append(m)
    results = app.engine.move_batch(movements)
    replayed = all(r.replayed for r in results)
    if replayed:
        response.status_code = status.HTTP_200_OK
    return BatchOut(replayed=replayed, count=len(results), results=_results(app, movements, results))


@router.get("", response_model=StockList)
def stock_balances(
    app: AppDep,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    location: Annotated[str | None, Query(max_length=64)] = None,
    after_sku: Annotated[str | None, Query(max_length=64)] = None,
    after_location: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> StockList:
    """Balances per SKU × location in (SKU, location) order, filtered by SKU and/or location (an unknown one is
    404), one page at a time: follow ``next``."""
    if (after_sku is None) != (after_location is None):
        raise InvalidInput("after_sku and after_location go together")
    after = (after_sku, after_location) if after_sku is not None and after_location is not None else None
    rows = app.engine.balances(sku=sku, location=location, after=after, limit=limit + 1)
    page = rows[:limit]
    nxt = StockCursor(after_sku=page[-1][0], after_location=page[-1][1]) if len(rows) > limit else None
    return StockList(
        balances=[StockRow(sku=s, location=loc, **BalanceOut.of(b).model_dump()) for s, loc, b in page], next=nxt
    )


__all__ = ["router"]
