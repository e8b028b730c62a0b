"""Wire emulation per dialect. Each module exposes ``DIALECT`` and optionally ``on_order`` / ``on_time`` hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from accord.sandbox.core import ChannelState, Order
from accord.sandbox.dialects import allegro, amazon, ebay, lazada, mercadolibre, shopee, shopify, walmart
from accord.sandbox.wire import Dialect

if TYPE_CHECKING:
    from accord.sandbox.app import Sandbox

DIALECTS: dict[str, Dialect] = {
    m.DIALECT.name: m.DIALECT for m in (amazon, shopify, ebay, walmart, mercadolibre, shopee, lazada, allegro)
}
ORDER_HOOKS: dict[str, Callable[[Sandbox, ChannelState, Order], None]] = {"shopify": shopify.on_order}
TIME_HOOKS: dict[str, Callable[[Sandbox, ChannelState, int], None]] = {
    "amazon": amazon.on_time,
    "walmart": walmart.on_time,
}
