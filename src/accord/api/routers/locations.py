"""Locations: where stock is held."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field, StrictStr

from accord.api.deps import AppDep
from accord.api.models import Ident, RequestModel
from accord.api.problems import problem_responses
from accord.domain.availability import Location, LocationKind
from accord.domain.errors import AlreadyExists, NotFound

router = APIRouter(prefix="/locations", tags=["locations"])


class LocationIn(RequestModel):
    id: Ident
    kind: LocationKind
    region: Annotated[StrictStr, Field(min_length=1, max_length=32)]
    country: Annotated[StrictStr, Field(min_length=2, max_length=2, examples=["DE"])]
    timezone: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "UTC"
    owner_channel: Ident | None = Field(default=None, description="platform_fc only: the channel holding the stock")

    def to_domain(self) -> Location:
        return Location(self.id, self.kind, self.region, self.country, self.timezone, self.owner_channel)


class LocationOut(BaseModel):
    id: str
    kind: LocationKind
    region: str
    country: str
    timezone: str
    owner_channel: str | None

    @classmethod
    def of(cls, loc: Location) -> LocationOut:
        return cls(
            id=loc.id,
            kind=loc.kind,
            region=loc.region,
            country=loc.country,
            timezone=loc.timezone,
            owner_channel=loc.owner_channel,
        )


class LocationList(BaseModel):
    locations: list[LocationOut]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LocationOut,
    responses={
        **problem_responses({409: "exists with different settings"}),
        200: {"description": "an identical location already existed (a retried request)"},
    },
)
def create_location(body: LocationIn, app: AppDep, response: Response) -> LocationOut:
    """Add a location. Repeating an identical request answers 200 with it; a different one with that id is 409."""
    loc = body.to_domain()
    try:
        app.engine.add_location(loc)
    except AlreadyExists:
        existing = app.engine.config().locations.get(loc.id)
        if existing != loc:
            raise AlreadyExists(f"location {loc.id!r} already exists with different settings") from None
        response.status_code = status.HTTP_200_OK
    return LocationOut.of(loc)


@router.get("", response_model=LocationList)
def list_locations(app: AppDep) -> LocationList:
    cfg = app.engine.config()
    return LocationList(locations=[LocationOut.of(loc) for loc in cfg.locations.values()])


@router.get("/{location_id:path}", response_model=LocationOut)
def get_location(location_id: str, app: AppDep) -> LocationOut:
    loc = app.engine.config().locations.get(location_id)
    if loc is None:
        raise NotFound("location", location_id)
    return LocationOut.of(loc)
