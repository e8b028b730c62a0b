"""PIM application layer: storage-backed catalogue, readiness kept current in the write transaction, CSV/XLSX
import and export, and the catalogue bench. The pure rules live in :mod:`accord.domain.pim`."""

from __future__ import annotations

from accord.pim.service import PRODUCT_UPDATED, READINESS_CHANGED, Pim, PimState, WriteResult

__all__ = ["PRODUCT_UPDATED", "READINESS_CHANGED", "Pim", "PimState", "WriteResult"]
