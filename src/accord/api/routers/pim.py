"""PIM: products and variants, history and revert, readiness per variant and per channel, channel context, and
the rule files (dialects, compliance packs) users add."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field, StrictBool, StrictStr

from accord.api.deps import AppDep
from accord.api.models import Ident, RequestModel
from accord.api.problems import problem_responses
from accord.pim.codec import product_from_json, product_to_json
from accord.pim.service import Pim

router = APIRouter(tags=["pim"])


def _pim(app: AppDep) -> Pim:
    pim = getattr(app, "_pim_service", None)
    if not isinstance(pim, Pim):
        pim = Pim(app.db, app.engine)
        app._pim_service = pim  # type: ignore[attr-defined]  # one per wired app: it caches the catalogue
    return pim


class WriteOut(BaseModel):
    product: str
    version: int
    created: bool
    changed: bool
    value_changes: int
    readiness_changed: int


class ChannelContextIn(RequestModel):
    country: Annotated[StrictStr, Field(min_length=2, max_length=2)]
    locales: Annotated[list[StrictStr], Field(min_length=1, max_length=50)]
    vat_inclusive: StrictBool
    packs: list[StrictStr] | None = None
    rules_dialect: StrictStr | None = None


@router.get("/products/{sku}", responses=problem_responses({404: "unknown product or variant"}))
def get_product(sku: str, app: AppDep) -> dict[str, Any]:
    """The product containing ``sku`` (a product, model or variant id), with every node's own values."""
    pim = _pim(app)
    prod, version = pim.get_product(sku)
    return product_to_json(prod, pim.state().catalog, version)


@router.put(
    "/products/{product_id}",
    response_model=WriteOut,
    responses=problem_responses({404: "unknown family", 422: "invalid product"}),
)
def put_product(
    product_id: Ident,
    app: AppDep,
    body: Annotated[dict[str, Any], Body(description="the shape `GET /products/{sku}` returns")],
    actor: Annotated[str, Query(max_length=128)] = "api",
) -> WriteOut:
    """Create or replace a whole product; readiness is updated in the same transaction."""
    pim = _pim(app)
    prod = product_from_json({**body, "id": product_id}, pim.state().catalog)
    r = pim.upsert_product(prod, actor)
    return WriteOut(
        product=r.product,
        version=r.version,
        created=r.created,
        changed=r.changed,
        value_changes=r.value_changes,
        readiness_changed=r.readiness_changed,
    )


@router.get("/products/{sku}/history", responses=problem_responses({404: "unknown product or variant"}))
def product_history(sku: str, app: AppDep) -> list[dict[str, Any]]:
    return _pim(app).history(sku)


@router.post(
    "/products/{sku}/revert", response_model=WriteOut, responses=problem_responses({404: "unknown", 422: "bad version"})
)
def product_revert(
    sku: str, app: AppDep, version: Annotated[int, Query(ge=1)], actor: Annotated[str, Query(max_length=128)] = "api"
) -> WriteOut:
    r = _pim(app).revert(sku, version, actor)
    return WriteOut(
        product=r.product,
        version=r.version,
        created=r.created,
        changed=r.changed,
        value_changes=r.value_changes,
        readiness_changed=r.readiness_changed,
    )


@router.get("/readiness/summary")
def readiness_summary(app: AppDep, channel: str | None = None) -> list[dict[str, Any]]:
    """Per channel: variants ready on every locale, blocked on some, and the top error issues."""
    return _pim(app).summary(channel)


@router.get("/readiness/{sku}", responses=problem_responses({404: "unknown variant or channel"}))
def readiness(sku: str, app: AppDep, channel: str | None = None) -> list[dict[str, Any]]:
    """Issues, score and ready flag per channel × locale of a variant (or every variant of a product)."""
    return _pim(app).readiness(sku, channel)


@router.put("/pim/channels/{channel_id}", responses=problem_responses({404: "unknown channel, locale or pack"}))
def put_channel_context(channel_id: Ident, body: ChannelContextIn, app: AppDep) -> dict[str, Any]:
    ctx = _pim(app).set_channel_context(
        channel_id,
        country=body.country,
        locales=body.locales,
        vat_inclusive=body.vat_inclusive,
        packs=body.packs,
        rules_dialect=body.rules_dialect,
    )
    return {"id": ctx.id, "dialect": ctx.dialect, "country": ctx.country, "locales": list(ctx.locales)}


class RuleFileIn(RequestModel):
    text: Annotated[StrictStr, Field(min_length=1, max_length=1_000_000, description="the file's content")]
    format: Literal["toml", "json"] = "toml"
    source: Annotated[StrictStr, Field(min_length=1, max_length=500)] = "api"


@router.get("/pim/rules")
def list_rules(app: AppDep) -> list[dict[str, Any]]:
    """Every channel dialect and compliance pack in force, built-in or stored."""
    return _pim(app).rulesets()


@router.put("/pim/rules", responses=problem_responses({422: "the rule file does not validate (source:line: reason)"}))
def put_rules(body: RuleFileIn, app: AppDep) -> dict[str, Any]:
    """Add or replace a dialect or pack (by its ``kind`` and ``name``); readiness of the channels it can apply to
    is recomputed in the same transaction."""
    return _pim(app).add_ruleset(body.text, body.source, body.format, "api")


@router.delete(
    "/pim/rules/{kind}/{name}",
    responses=problem_responses({404: "no such stored rule file", 422: "a channel still uses it"}),
)
def delete_rules(kind: Literal["dialect", "pack"], name: Ident, app: AppDep) -> dict[str, Any]:
    """Remove a stored rule file (a built-in one of the same name applies again)."""
    return _pim(app).remove_ruleset(kind, name, "api")
