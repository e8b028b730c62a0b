"""The outbox: every committed change as a past-tense event, readable with a cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from accord.api.deps import AppDep
from accord.api.models import PageLimit
from accord.app.relay import fetch_events

router = APIRouter(prefix="/events", tags=["events"])


class EventOut(BaseModel):
    id: int
    type: str
    key: str
    data: dict[str, Any]
    created_at: int


class EventPage(BaseModel):
    events: list[EventOut]
    next_after: int = Field(description="pass as ?after= to continue (the last id returned, or the given after)")


@router.get("", response_model=EventPage)
def list_events(
    app: AppDep,
    after: Annotated[int, Query(ge=0, description="return events with ids above this")] = 0,
    limit: Annotated[PageLimit, Query()] = 100,
    types: Annotated[list[str] | None, Query(alias="type", max_length=50, description="repeatable")] = None,
) -> EventPage:
    rows = fetch_events(app.db, after=after, limit=limit, types=types)
    return EventPage(
        events=[EventOut.model_validate(e.as_dict()) for e in rows], next_after=rows[-1].id if rows else after
    )
