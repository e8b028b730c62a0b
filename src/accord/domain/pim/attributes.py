"""Typed attributes and their values.

An attribute is defined once (code, type, flags) and listed by the families that use it. A value is a plain,
immutable Python object whose shape depends on the attribute type:

=================  ============================================================
type               value
=================  ============================================================
text, rich_text,   ``str`` (rich text is HTML/markdown kept as a string)
localized_text
text_list          ``tuple[str, ...]`` (bullet points, keywords)
number             :class:`Measure` (``unit`` is ``None`` for a plain number)
boolean            ``bool``
date               ``datetime.date``
single_select      ``str`` (an option code)
multi_select       ``tuple[str, ...]`` of option codes, no repeats
price              ``tuple[Money, ...]``, at most one amount per currency
gtin               ``str`` of 8, 12, 13 or 14 digits (GTIN-8, UPC-A, EAN-13, GTIN-14)
asset              :class:`AssetRef`
asset_list         ``tuple[AssetRef, ...]``
=================  ============================================================

:meth:`AttributeDef.validate` checks a value and returns it in canonical form (lists become tuples, ints become
:class:`Measure`); :func:`value_from_json` / :func:`value_to_json` convert to and from JSON-friendly data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TypeAlias, TypeVar

from accord.domain.errors import InvalidInput

_T = TypeVar("_T")


class AttributeType(StrEnum):
    TEXT = "text"
    LOCALIZED_TEXT = "localized_text"  # text that is always localizable
    RICH_TEXT = "rich_text"
    TEXT_LIST = "text_list"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    SINGLE_SELECT = "single_select"
    MULTI_SELECT = "multi_select"
    PRICE = "price"
    GTIN = "gtin"
    ASSET = "asset"
    ASSET_LIST = "asset_list"


class AssetKind(StrEnum):
    IMAGE = "image"
    DOCUMENT = "document"


TEXT_TYPES = frozenset({AttributeType.TEXT, AttributeType.LOCALIZED_TEXT, AttributeType.RICH_TEXT})
LIST_TYPES = frozenset({AttributeType.TEXT_LIST, AttributeType.MULTI_SELECT, AttributeType.ASSET_LIST})

_LOCALE_RE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_MIME_RE = re.compile(r"[a-z]+/[A-Za-z0-9.+\-]+")


def check_code(value: str, what: str) -> None:
    """Attribute, option, family, category and unit codes: 1-64 of letters, digits, ``_ . -``."""
    if not isinstance(value, str) or not _CODE_RE.fullmatch(value):
        raise InvalidInput(f"{what} must be 1-64 letters, digits, '_', '.' or '-', got {value!r}")


def check_locale(code: str) -> None:
    if not isinstance(code, str) or not _LOCALE_RE.fullmatch(code):
        raise InvalidInput(f"locale must look like 'en' or 'de_DE', got {code!r}")


def check_currency(code: str) -> None:
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise InvalidInput(f"currency must be an ISO 4217 code like 'EUR', got {code!r}")


def language_of(locale: str) -> str:
    """``de_AT`` → ``de``."""
    return locale.split("_", 1)[0]


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of one dimension; ``to_base`` converts an amount to the dimension's base unit."""

    code: str
    dimension: str
    to_base: Decimal = Decimal(1)

    def check(self) -> None:
        check_code(self.code, "unit code")
        check_code(self.dimension, "unit dimension")
        if self.to_base <= 0:
            raise InvalidInput(f"unit {self.code} needs a positive conversion factor")


def standard_units() -> tuple[Unit, ...]:
    """A starter set; catalogues add their own."""
    d = Decimal
    return (
        Unit("mg", "mass", d("0.001")),
        Unit("g", "mass", d(1)),
        Unit("kg", "mass", d(1000)),
        Unit("oz", "mass", d("28.349523125")),
        Unit("lb", "mass", d("453.59237")),
        Unit("mm", "length", d("0.001")),
        Unit("cm", "length", d("0.01")),
        Unit("m", "length", d(1)),
        Unit("in", "length", d("0.0254")),
        Unit("ft", "length", d("0.3048")),
        Unit("ml", "volume", d("0.001")),
        Unit("l", "volume", d(1)),
        Unit("floz", "volume", d("0.0295735295625")),
        Unit("W", "power", d(1)),
        Unit("kW", "power", d(1000)),
        Unit("Wh", "energy", d(1)),
        Unit("kWh", "energy", d(1000)),
        Unit("V", "voltage", d(1)),
        Unit("pcs", "count", d(1)),
    )


@dataclass(frozen=True, slots=True)
class Measure:
    amount: Decimal
    unit: str | None = None

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}" if self.unit else str(self.amount)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in one currency. ``vat_included`` None means "as the channel displays prices"."""

    amount: Decimal
    currency: str
    vat_included: bool | None = None


@dataclass(frozen=True, slots=True)
class AssetRef:
    """A reference to an image or document held elsewhere (DAM, object store, URL)."""

    uri: str
    mime_type: str
    width_px: int | None = None
    height_px: int | None = None

    @property
    def kind(self) -> AssetKind:
        return AssetKind.IMAGE if self.mime_type.startswith("image/") else AssetKind.DOCUMENT

    @property
    def longest_side_px(self) -> int | None:
        sides = [s for s in (self.width_px, self.height_px) if s is not None]
        return max(sides) if sides else None


Value: TypeAlias = str | bool | date | Measure | AssetRef | tuple[str, ...] | tuple[Money, ...] | tuple[AssetRef, ...]


@dataclass(frozen=True, slots=True)
class SelectOption:
    code: str
    labels: Mapping[str, str] = field(default_factory=dict)  # locale → label

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels.get(language_of(locale)) or self.code


def price_in(value: object, currency: str) -> Money | None:
    """The amount of a price value in ``currency``, if any."""
    if isinstance(value, tuple):
        for m in value:
            if isinstance(m, Money) and m.currency == currency:
                return m
    return None


def is_empty(value: object) -> bool:
    """No value, an empty/blank string or an empty list count as missing content."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, tuple):
        return len(value) == 0
    return False


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """One attribute.

    ``required_channels`` lists where a value is mandatory: channel ids, ``"dialect:<name>"`` for every channel
    of a dialect, or ``"*"`` for every channel.
    """

    code: str
    type: AttributeType
    labels: Mapping[str, str] = field(default_factory=dict)
    localizable: bool = False
    scopable: bool = False  # channel-specific values allowed
    required_channels: frozenset[str] = frozenset()
    options: tuple[SelectOption, ...] = ()  # single/multi select
    dimension: str | None = None  # number: the unit dimension ("mass"); None = plain number
    asset_kind: AssetKind | None = None  # asset: restrict to image or document
    max_chars: int | None = None  # text: a hard limit for any channel

    def check(self) -> None:
        check_code(self.code, "attribute code")
        if not isinstance(self.type, AttributeType):
            raise InvalidInput(f"attribute {self.code}: unknown type {self.type!r}")
        if self.type is AttributeType.LOCALIZED_TEXT and not self.localizable:
            raise InvalidInput(f"attribute {self.code}: localized_text must be localizable")
        selects = (AttributeType.SINGLE_SELECT, AttributeType.MULTI_SELECT)
        if self.type in selects:
            if not self.options:
                raise InvalidInput(f"attribute {self.code}: a select needs at least one option")
            codes = [o.code for o in self.options]
            for c in codes:
                check_code(c, f"option of {self.code}")
            if len(set(codes)) != len(codes):
                raise InvalidInput(f"attribute {self.code}: duplicate option codes")
            for o in self.options:
                for loc in o.labels:
                    check_locale(loc)
        elif self.options:
            raise InvalidInput(f"attribute {self.code}: only select attributes have options")
        if self.dimension is not None and self.type is not AttributeType.NUMBER:
            raise InvalidInput(f"attribute {self.code}: only number attributes have a unit dimension")
        if self.asset_kind is not None and self.type not in (AttributeType.ASSET, AttributeType.ASSET_LIST):
            raise InvalidInput(f"attribute {self.code}: only asset attributes have an asset kind")
        if self.max_chars is not None and (self.max_chars <= 0 or self.type not in TEXT_TYPES):
            raise InvalidInput(f"attribute {self.code}: max_chars must be positive and on a text attribute")
        for loc in self.labels:
            check_locale(loc)

    def option_codes(self) -> frozenset[str]:
        return frozenset(o.code for o in self.options)

    def is_required_on(self, channel_id: str, dialect: str) -> bool:
        rc = self.required_channels
        return bool(rc) and ("*" in rc or channel_id in rc or f"dialect:{dialect}" in rc)

    def validate(self, value: object, units: Mapping[str, Unit]) -> Value:
        """Check ``value`` against this attribute's type and return it in canonical form."""
        t = self.type
        if t in TEXT_TYPES:
            s = _expect(self, value, str, "a string")
            if self.max_chars is not None and len(s) > self.max_chars:
                raise InvalidInput(f"{self.code}: {len(s)} characters, at most {self.max_chars} allowed")
            return s
        if t is AttributeType.TEXT_LIST:
            return tuple(_expect(self, v, str, "a list of strings") for v in _expect_seq(self, value))
        if t is AttributeType.BOOLEAN:
            return _expect(self, value, bool, "true or false")
        if t is AttributeType.DATE:
            if isinstance(value, date) and not hasattr(value, "hour"):
                return value
            raise InvalidInput(f"{self.code}: expected a date, got {type(value).__name__}")
        if t is AttributeType.NUMBER:
            return self._validate_number(value, units)
        if t is AttributeType.SINGLE_SELECT:
            code = _expect(self, value, str, "an option code")
            self._check_option(code)
            return code
        if t is AttributeType.MULTI_SELECT:
            codes = tuple(_expect(self, v, str, "a list of option codes") for v in _expect_seq(self, value))
            for c in codes:
                self._check_option(c)
            if len(set(codes)) != len(codes):
                raise InvalidInput(f"{self.code}: an option is chosen twice")
            return codes
        if t is AttributeType.PRICE:
            return self._validate_price(value)
        if t is AttributeType.GTIN:
            s = _expect(self, value, str, "a string of digits")
            if not s.isascii() or not s.isdigit() or len(s) not in (8, 12, 13, 14):
                raise InvalidInput(f"{self.code}: a GTIN has 8, 12, 13 or 14 digits, got {s!r}")
            return s
        if t is AttributeType.ASSET:
            return self._validate_asset(value)
        if t is AttributeType.ASSET_LIST:
            return tuple(self._validate_asset(v) for v in _expect_seq(self, value))
        raise InvalidInput(f"{self.code}: unsupported type {t}")  # pragma: no cover - enum is exhaustive

    def _check_option(self, code: str) -> None:
        if code not in self.option_codes():
            known = ", ".join(sorted(self.option_codes()))
            raise InvalidInput(f"{self.code}: unknown option {code!r} (known: {known})")

    def _validate_number(self, value: object, units: Mapping[str, Unit]) -> Measure:
        if isinstance(value, Measure):
            m = value
        elif isinstance(value, bool):
            raise InvalidInput(f"{self.code}: expected a number, got bool")
        elif isinstance(value, (int, Decimal)):
            m = Measure(Decimal(value), None)
        else:
            raise InvalidInput(f"{self.code}: expected a number (int, Decimal or Measure), got {type(value).__name__}")
        if not isinstance(m.amount, Decimal) or not m.amount.is_finite():
            raise InvalidInput(f"{self.code}: amount must be a finite Decimal, got {m.amount!r}")
        if self.dimension is None:
            if m.unit is not None:
                raise InvalidInput(f"{self.code}: a plain number takes no unit, got {m.unit!r}")
            return m
        if m.unit is None:
            raise InvalidInput(f"{self.code}: needs a unit of {self.dimension}")
        unit = units.get(m.unit)
        if unit is None:
            raise InvalidInput(f"{self.code}: unknown unit {m.unit!r}")
        if unit.dimension != self.dimension:
            raise InvalidInput(f"{self.code}: unit {m.unit!r} measures {unit.dimension}, expected {self.dimension}")
        return m

    def _validate_price(self, value: object) -> tuple[Money, ...]:
        if isinstance(value, Money):
            value = (value,)
        out: list[Money] = []
        seen: set[str] = set()
        for m in _expect_seq(self, value):
            if not isinstance(m, Money):
                raise InvalidInput(f"{self.code}: expected Money amounts, got {type(m).__name__}")
            check_currency(m.currency)
            if not isinstance(m.amount, Decimal) or not m.amount.is_finite() or m.amount < 0:
                raise InvalidInput(f"{self.code}: {m.currency} amount must be a non-negative Decimal")
            if m.currency in seen:
                raise InvalidInput(f"{self.code}: two amounts in {m.currency}")
            seen.add(m.currency)
            out.append(m)
        return tuple(out)

    def _validate_asset(self, value: object) -> AssetRef:
        if not isinstance(value, AssetRef):
            raise InvalidInput(f"{self.code}: expected an asset reference, got {type(value).__name__}")
        if not value.uri or any(c.isspace() for c in value.uri):
            raise InvalidInput(f"{self.code}: asset needs a url or path without spaces")
        if not _MIME_RE.fullmatch(value.mime_type):
            raise InvalidInput(f"{self.code}: bad mime type {value.mime_type!r}")
        for side in (value.width_px, value.height_px):
            if side is not None and (isinstance(side, bool) or not isinstance(side, int) or side <= 0):
                raise InvalidInput(f"{self.code}: pixel sizes must be positive integers")
        if self.asset_kind is not None and value.kind is not self.asset_kind:
            raise InvalidInput(f"{self.code}: expected an {self.asset_kind} asset, got {value.mime_type}")
        return value


def _expect(attr: AttributeDef, value: object, typ: type[_T], what: str) -> _T:
    if not isinstance(value, typ) or (typ is not bool and isinstance(value, bool)):
        raise InvalidInput(f"{attr.code}: expected {what}, got {type(value).__name__}")
    return value


def _expect_seq(attr: AttributeDef, value: object) -> tuple[object, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    raise InvalidInput(f"{attr.code}: expected a list, got {type(value).__name__}")


# --- JSON codec (storage and API speak JSON; the domain speaks typed values) ---------------------------------


def value_to_json(attr: AttributeDef, value: Value) -> object:
    if isinstance(value, Measure):
        return {"amount": str(value.amount), "unit": value.unit}
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, AssetRef):
        return _asset_to_json(value)
    if isinstance(value, tuple):
        if attr.type is AttributeType.PRICE:
            return [
                {"amount": str(m.amount), "currency": m.currency, "vat_included": m.vat_included}
                for m in value
                if isinstance(m, Money)
            ]
        if attr.type is AttributeType.ASSET_LIST:
            return [_asset_to_json(a) for a in value if isinstance(a, AssetRef)]
        return list(value)
    return value


def _asset_to_json(a: AssetRef) -> dict[str, object]:
    return {"uri": a.uri, "mime_type": a.mime_type, "width_px": a.width_px, "height_px": a.height_px}


def value_from_json(attr: AttributeDef, raw: object, units: Mapping[str, Unit]) -> Value:
    """Parse JSON-shaped data for ``attr`` and validate it."""
    t = attr.type
    try:
        if t is AttributeType.DATE and isinstance(raw, str):
            raw = date.fromisoformat(raw)
        elif t is AttributeType.NUMBER:
            raw = _measure_from_json(raw)
        elif t is AttributeType.PRICE and isinstance(raw, list):
            raw = tuple(
                Money(_decimal(p["amount"]), str(p["currency"]), p.get("vat_included")) for p in raw if _is_map(p)
            ) + tuple(p for p in raw if not _is_map(p))
        elif t is AttributeType.ASSET and isinstance(raw, dict):
            raw = _asset_from_json(raw)
        elif t is AttributeType.ASSET_LIST and isinstance(raw, list):
            raw = tuple(_asset_from_json(a) if isinstance(a, dict) else a for a in raw)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise InvalidInput(f"{attr.code}: cannot read {raw!r} as {t}: {exc}") from None
    return attr.validate(raw, units)


def _is_map(x: object) -> bool:
    return isinstance(x, dict)


def _decimal(x: object) -> Decimal:
    if isinstance(x, bool) or not isinstance(x, (str, int, float, Decimal)):
        raise TypeError(f"not a number: {x!r}")
    return Decimal(str(x)) if isinstance(x, float) else Decimal(x)


def _measure_from_json(raw: object) -> object:
    if isinstance(raw, dict):
        unit = raw.get("unit")
        return Measure(_decimal(raw["amount"]), None if unit is None else str(unit))
    if isinstance(raw, (str, float)) and not isinstance(raw, bool):
        return Measure(_decimal(raw), None)
    return raw


def _asset_from_json(raw: dict[str, object]) -> AssetRef:
    w, h = raw.get("width_px"), raw.get("height_px")
    return AssetRef(
        uri=str(raw["uri"]),
        mime_type=str(raw["mime_type"]),
        width_px=w if isinstance(w, int) or w is None else int(str(w)),
        height_px=h if isinstance(h, int) or h is None else int(str(h)),
    )
