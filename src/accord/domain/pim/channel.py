"""What readiness needs to know about a channel (a marketplace account in one region)."""

from __future__ import annotations

from dataclasses import dataclass

from accord.domain.availability import check_id
from accord.domain.errors import InvalidInput
from accord.domain.pim.attributes import check_currency, check_locale

EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
        "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
    }
)  # fmt: skip
UK_COUNTRIES = frozenset({"GB"})


@dataclass(frozen=True, slots=True)
class ChannelContext:
    """``packs`` None means "every built-in or added pack whose scope matches this channel's country/region";
    a tuple is an explicit list and is used as given."""

    id: str
    dialect: str
    region: str
    country: str
    currency: str
    locales: tuple[str, ...]
    vat_inclusive: bool
    packs: tuple[str, ...] | None = None

    def check(self) -> None:
        check_id(self.id, "channel id")
        if not self.dialect:
            raise InvalidInput(f"channel {self.id} needs a dialect")
        if not self.region:
            raise InvalidInput(f"channel {self.id} needs a region")
        if len(self.country) != 2 or not self.country.isalpha() or not self.country.isupper():
            raise InvalidInput(f"country must be an ISO 3166 alpha-2 code like 'DE', got {self.country!r}")
        check_currency(self.currency)
        if not self.locales:
            raise InvalidInput(f"channel {self.id} needs at least one locale")
        for loc in self.locales:
            check_locale(loc)
        if len(set(self.locales)) != len(self.locales):
            raise InvalidInput(f"channel {self.id} lists a locale twice")
        if self.packs is not None and len(set(self.packs)) != len(self.packs):
            raise InvalidInput(f"channel {self.id} lists a compliance pack twice")

    @property
    def in_eu(self) -> bool:
        return self.country in EU_COUNTRIES
