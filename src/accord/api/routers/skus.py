"""SKUs: one or many per request; listed with a cursor."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, Discriminator, Field, StrictStr, Tag

from accord.api.deps import AppDep
from accord.api.models import Ident, PageLimit, RequestModel
from accord.api.problems import problem_responses
from accord.app.engine import MAX_BATCH
from accord.domain.catalog import Sku

router = APIRouter(prefix="/skus", tags=["skus"])


class SkuIn(RequestModel):
    id: Ident
    title: Annotated[StrictStr, Field(max_length=500)] = ""


class SkuOut(BaseModel):
    id: str
    title: str


class SkusCreated(BaseModel):
    created: int = Field(description="SKUs that were new")
    unchanged: int = Field(description="SKUs that already existed, identical (skipped)")


class SkuPage(BaseModel):
    skus: list[SkuOut]
    next_after: str | None = Field(description="pass as ?after= for the next page; null on the last page")


def _shape(value: Any) -> str:
    return "list" if isinstance(value, list) else "sku"


SkuBody = Annotated[
    Annotated[SkuIn, Tag("sku")] | Annotated[list[SkuIn], Field(min_length=1, max_length=MAX_BATCH), Tag("list")],
    Discriminator(_shape),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SkuOut | SkusCreated,
    responses={
        **problem_responses({409: "an id exists with another title"}),
        200: {"description": "nothing new: every SKU already existed, identical (a retried request)"},
    },
)
def create_skus(body: Annotated[SkuBody, Body()], app: AppDep, response: Response) -> SkuOut | SkusCreated:
    """Add one SKU (an object) or many (a list, all or nothing). An existing id with another title is 409."""
    if isinstance(body, list):
        created = app.engine.add_skus([Sku(s.id, s.title) for s in body])
        if created == 0:
            response.status_code = status.HTTP_200_OK
        return SkusCreated(created=created, unchanged=len(body) - created)
    if not app.engine.add_sku(Sku(body.id, body.title)):
        response.status_code = status.HTTP_200_OK
    return SkuOut(id=body.id, title=body.title)


@router.get("", response_model=SkuPage)
def list_skus(
    app: AppDep,
    after: Annotated[str, Query(max_length=64, description="return SKUs with ids after this one")] = "",
    limit: Annotated[PageLimit, Query()] = 100,
) -> SkuPage:
    rows = app.engine.skus(after=after, limit=limit)
    next_after = rows[-1].id if len(rows) == limit else None
    return SkuPage(skus=[SkuOut(id=s.id, title=s.title) for s in rows], next_after=next_after)
