"""Channels: marketplace accounts, the locations that fulfil them and their stock policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, StrictStr

from accord.api.deps import AppDep
from accord.api.models import Ident, NonNegative, RequestModel
from accord.api.problems import problem_responses
from accord.domain.availability import Channel, StockPolicy
from accord.domain.errors import AlreadyExists, NotFound

router = APIRouter(prefix="/channels", tags=["channels"])

MAX_CHANNEL_LOCATIONS = 1000
Pct = Annotated[int, Field(strict=True, ge=0, le=100)]
LocationIds = Annotated[list[Ident], Field(max_length=MAX_CHANNEL_LOCATIONS, description="in priority order")]


class PolicyIn(RequestModel):
    buffer_units: NonNegative = 0
    max_qty: NonNegative | None = Field(default=None, description="cap on the shown quantity; null for none")
    pool_pct: Pct = 100
    zero_at_or_below: NonNegative = 0

    def to_domain(self) -> StockPolicy:
        return StockPolicy(self.buffer_units, self.max_qty, self.pool_pct, self.zero_at_or_below)


class PolicyPatch(RequestModel):
    """Only the fields given change; ``"max_qty": null`` removes the cap."""

    buffer_units: NonNegative | None = None
    max_qty: NonNegative | None = None
    pool_pct: Pct | None = None
    zero_at_or_below: NonNegative | None = None

    def merged(self, old: StockPolicy) -> StockPolicy:
        given = self.model_fields_set
        return StockPolicy(
            buffer_units=self.buffer_units if self.buffer_units is not None else old.buffer_units,
            max_qty=self.max_qty if "max_qty" in given else old.max_qty,
            pool_pct=self.pool_pct if self.pool_pct is not None else old.pool_pct,
            zero_at_or_below=self.zero_at_or_below if self.zero_at_or_below is not None else old.zero_at_or_below,
        )


class ChannelIn(RequestModel):
    id: Ident
    dialect: Annotated[StrictStr, Field(min_length=1, max_length=32, examples=["shopify"])]
    region: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    currency: Annotated[StrictStr, Field(min_length=3, max_length=3, examples=["EUR"])]
    locations: LocationIds = Field(default_factory=list)
    policy: PolicyIn = Field(default_factory=PolicyIn)

    def to_domain(self) -> Channel:
        return Channel(
            self.id, self.dialect, self.region, self.currency, tuple(self.locations), self.policy.to_domain()
        )


class ChannelPatch(RequestModel):
    policy: PolicyPatch | None = None
    locations: LocationIds | None = None


class PolicyOut(BaseModel):
    buffer_units: int
    max_qty: int | None
    pool_pct: int
    zero_at_or_below: int


class ChannelOut(BaseModel):
    id: str
    dialect: str
    region: str
    currency: str
    locations: list[str]
    policy: PolicyOut

    @classmethod
    def of(cls, ch: Channel) -> ChannelOut:
        p = ch.policy
        return cls(
            id=ch.id,
            dialect=ch.dialect,
            region=ch.region,
            currency=ch.currency,
            locations=list(ch.locations),
            policy=PolicyOut(
                buffer_units=p.buffer_units,
                max_qty=p.max_qty,
                pool_pct=p.pool_pct,
                zero_at_or_below=p.zero_at_or_below,
            ),
        )


class ChannelList(BaseModel):
    channels: list[ChannelOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ChannelOut,
    responses={
        **problem_responses({409: "exists with different settings"}),
        200: {"description": "an identical channel already existed (a retried request)"},
    },
)
def create_channel(body: ChannelIn, app: AppDep, response: Response) -> ChannelOut:
    """Add a channel; its ATS is computed in the same transaction. An identical repeat answers 200."""
    ch = body.to_domain()
    try:
        app.engine.add_channel(ch)
    except AlreadyExists:
        existing = app.engine.config().channels.get(ch.id)
        if existing != ch:
            raise AlreadyExists(f"channel {ch.id!r} already exists with different settings") from None
        response.status_code = status.HTTP_200_OK
    return ChannelOut.of(ch)


@router.get("", response_model=ChannelList)
def list_channels(app: AppDep) -> ChannelList:
    return ChannelList(channels=[ChannelOut.of(ch) for ch in app.engine.config().channels.values()])


@router.get("/{channel_id:path}", response_model=ChannelOut)
def get_channel(channel_id: str, app: AppDep) -> ChannelOut:
    ch = app.engine.config().channels.get(channel_id)
    if ch is None:
        raise NotFound("channel", channel_id)
    return ChannelOut.of(ch)


@router.patch("/{channel_id:path}", response_model=ChannelOut)
def update_channel(channel_id: str, body: ChannelPatch, app: AppDep) -> ChannelOut:
    """Change the policy (fields given are merged into the current one) and/or the fulfilling locations.

    The channel's ATS is recomputed in the same transaction as the change.
    """
    policy = None
    if body.policy is not None:
        current = app.engine.config().channels.get(channel_id)
        if current is None:
            raise NotFound("channel", channel_id)
        policy = body.policy.merged(current.policy)
    ch = app.engine.update_channel(channel_id, policy=policy, locations=body.locations)
    return ChannelOut.of(ch)
