"""Minimal catalogue for the ledger: a SKU. The PIM grows this into products, variants and attributes."""

from __future__ import annotations

from dataclasses import dataclass

from accord.domain.availability import check_id


@dataclass(frozen=True, slots=True)
class Sku:
    id: str
    title: str = ""

    def check(self) -> None:
        check_id(self.id, "SKU")
