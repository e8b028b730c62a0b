"""Fulfilment routing: choose the locations that ship each order (numpy/scipy allowed here, not in domain)."""

from accord.routing.model import (
    Allocation,
    ChannelRules,
    LineExplanation,
    LocationLoad,
    Network,
    RouteLine,
    RouteLocation,
    RouteOrder,
    RoutePlan,
    RoutingWeights,
    ShippingModel,
    Slip,
    Stock,
    capacity_slip,
    haversine_km,
)
from accord.routing.router import BatchResult, Router, RouterConfig, baseline_route

__all__ = [
    "Allocation",
    "BatchResult",
    "ChannelRules",
    "LineExplanation",
    "LocationLoad",
    "Network",
    "RouteLine",
    "RouteLocation",
    "RouteOrder",
    "RoutePlan",
    "Router",
    "RouterConfig",
    "RoutingWeights",
    "ShippingModel",
    "Slip",
    "Stock",
    "baseline_route",
    "capacity_slip",
    "haversine_km",
]
