"""Shared request/response building blocks.

Request models forbid unknown fields (a typo such as ``quantity`` is an error, not silently ignored) and use
strict integers: ``1.0``, ``"1"`` and ``true`` are not quantities.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from accord.domain.ledger import Balance

MAX_QTY = 10**12  # far above any real stock level; keeps sums well inside 64-bit columns
MAX_PAGE = 1000

Ident = Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^\S+$", examples=["wh-berlin"])]
Text = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Key = Annotated[StrictStr, Field(min_length=1, max_length=200)]
PositiveQty = Annotated[StrictInt, Field(gt=0, le=MAX_QTY, description="a whole number > 0")]
SignedQty = Annotated[StrictInt, Field(ge=-MAX_QTY, le=MAX_QTY, description="a whole number, not zero")]
CountQty = Annotated[StrictInt, Field(ge=0, le=MAX_QTY, description="a whole number >= 0")]
NonNegative = Annotated[StrictInt, Field(ge=0, le=MAX_QTY)]
PageLimit = Annotated[int, Field(ge=1, le=MAX_PAGE)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BalanceOut(BaseModel):
    on_hand: int
    committed: int
    in_transit: int
    damaged: int
    quarantine: int
    available: int

    @classmethod
    def of(cls, b: Balance) -> BalanceOut:
        return cls(
            on_hand=b.on_hand,
            committed=b.committed,
            in_transit=b.in_transit,
            damaged=b.damaged,
            quarantine=b.quarantine,
            available=b.available,
        )


class AtsChangeOut(BaseModel):
    channel: str
    old_ats: int
    new_ats: int


class MoveResultOut(BaseModel):
    key: str = Field(description="the movement's idempotency key")
    kind: str
    sku: str
    location: str
    qty: int
    replayed: bool = Field(description="true when this key was already applied; nothing moved this time")
    transfer_id: str | None
    balances: dict[str, BalanceOut] = Field(
        description="location → balance after the movement (on a replay: the current balance)"
    )
    ats_changes: list[AtsChangeOut] = Field(description="channel ATS values this request changed")
