"""Dead letters: events a subscriber could not handle after every retry, parked for a person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from accord.api.deps import AppDep
from accord.app.relay import DeadLetter, dead_letters

router = APIRouter(prefix="/deadletters", tags=["deadletters"])


class DeadLetterOut(BaseModel):
    subscriber: str
    event_id: int
    event_type: str
    key: str
    attempts: int
    last_error: str
    updated_at: int

    @classmethod
    def of(cls, d: DeadLetter) -> DeadLetterOut:
        return cls(
            subscriber=d.subscriber,
            event_id=d.event_id,
            event_type=d.event_type,
            key=d.key,
            attempts=d.attempts,
            last_error=d.last_error,
            updated_at=d.updated_at,
        )


class DeadLetterList(BaseModel):
    deadletters: list[DeadLetterOut]


class RedriveOut(BaseModel):
    subscriber: str
    event_id: int
    delivered: bool = Field(description="false: it failed again and stays a dead letter (see last_error)")
    last_error: str | None = None


@router.get("", response_model=DeadLetterList)
def list_dead_letters(app: AppDep, subscriber: Annotated[str | None, Query(max_length=64)] = None) -> DeadLetterList:
    return DeadLetterList(deadletters=[DeadLetterOut.of(d) for d in dead_letters(app.db, subscriber)])


@router.post("/{subscriber}/{event_id}/redrive", response_model=RedriveOut)
def redrive(subscriber: str, event_id: int, app: AppDep) -> RedriveOut:
    """Deliver a dead letter again now. 200 either way; ``delivered`` says whether it went through."""
    if app.relay.redrive(subscriber, event_id):
        return RedriveOut(subscriber=subscriber, event_id=event_id, delivered=True)
    still = [d for d in dead_letters(app.db, subscriber) if d.event_id == event_id]
    return RedriveOut(
        subscriber=subscriber, event_id=event_id, delivered=False, last_error=still[0].last_error if still else None
    )
