"""Orders, fulfilment routing and returns (issue 5): the app layer over domain.orders, domain.returns and routing."""

from accord.orders.returns import ReturnService
from accord.orders.service import Destination, OrderService, PlaceLine, PlaceOrder

__all__ = ["Destination", "OrderService", "PlaceLine", "PlaceOrder", "ReturnService"]
