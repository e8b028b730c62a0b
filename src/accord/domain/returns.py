"""Return (RMA) rules: region policies, the requested → received → inspected → graded flow, refund state,
and the ledger movements each step implies.

Pure and stdlib only. Received units go straight to quarantine (RECEIVE then QUARANTINE in one batch), so
nothing is sellable before inspection; each grade then says where they go:

* resellable → UNQUARANTINE (back to on_hand at the receiving location);
* refurbish → stays in quarantine until :func:`release_refurbished` (UNQUARANTINE) or scrap;
* damaged → UNQUARANTINE then DAMAGE in one batch (the ledger has no direct quarantine → damaged movement;
  the two legs net to quarantine −q, damaged +q and never leave the units available outside the transaction);
* scrap → SCRAP from the quarantine bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.ledger import Movement, MovementKind


class Payer(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class ReturnReason(StrEnum):
    CHANGED_MIND = "changed_mind"
    DEFECTIVE = "defective"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"

    @property
    def seller_fault(self) -> bool:
        return self is not ReturnReason.CHANGED_MIND


@dataclass(frozen=True, slots=True)
class ReturnPolicy:
    """A region's return rule. Fees apply only when the buyer is at fault (changed mind)."""

    name: str
    region: str
    window_days: int
    return_shipping_paid_by: Payer = Payer.SELLER
    restocking_fee_pct: int = 0  # of the returned goods' value, buyer-fault returns only
    return_label_cost_minor: int = 0  # deducted from the refund when the buyer pays return shipping
    refund_requires_receipt: bool = True  # False: refund on request (returnless), before the units come back

    def check(self) -> None:
        if not self.name or not self.region:
            raise InvalidInput("return policy needs a name and a region")
        if self.window_days <= 0:
            raise InvalidInput(f"return policy {self.name}: window must be positive, got {self.window_days} days")
        if not 0 <= self.restocking_fee_pct <= 100:
            raise InvalidInput(f"return policy {self.name}: restocking fee must be 0-100 %")
        if self.return_label_cost_minor < 0:
            raise InvalidInput(f"return policy {self.name}: label cost must be zero or more")


class ReturnRejected(InvalidInput):
    """An RMA broke a region's return rule; ``rule`` names it."""

    def __init__(self, message: str, rule: str) -> None:
        super().__init__(message)
        self.rule = rule


class RmaStatus(StrEnum):
    REQUESTED = "requested"
    RECEIVED = "received"  # at least one unit is in quarantine at a location
    INSPECTED = "inspected"  # grading has started
    GRADED = "graded"  # every requested unit is received and graded (or receiving was closed)


class RefundState(StrEnum):
    NOT_DUE = "not_due"  # nothing graded yet
    DUE = "due"  # amount known, not yet paid back
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class RefundBreakdown:
    """What an RMA refunds, in minor units: the returned units' value less the buyer-fault deductions."""

    units: int
    value_minor: int
    restocking_fee_minor: int
    return_shipping_minor: int
    due_minor: int


class Grade(StrEnum):
    RESELLABLE = "resellable"
    REFURBISH = "refurbish"
    DAMAGED = "damaged"
    SCRAP = "scrap"


RMA_EVENTS: dict[str, str] = {
    "requested": "ReturnRequested",
    "received": "ReturnReceived",
    "graded": "ReturnGraded",
    "refunded": "ReturnRefunded",
}


@dataclass(slots=True)
class RmaLine:
    sku: str
    qty_requested: int
    unit_price_minor: int
    location: str | None = None  # where its units were received
    qty_received: int = 0
    graded: dict[Grade, int] = field(default_factory=dict)

    @property
    def qty_graded(self) -> int:
        return sum(self.graded.values())

    @property
    def qty_awaiting_grade(self) -> int:
        return self.qty_received - self.qty_graded


@dataclass(slots=True)
class Rma:
    id: str
    order_id: str
    channel: str
    policy: ReturnPolicy
    reason: ReturnReason
    requested_at: datetime
    lines: dict[str, RmaLine]
    status: RmaStatus = RmaStatus.REQUESTED
    refund_state: RefundState = RefundState.NOT_DUE
    refunded_minor: int = 0
    receiving_closed: bool = False
    _seq: int = 0

    def _line(self, sku: str) -> RmaLine:
        try:
            return self.lines[sku]
        except KeyError:
            raise InvalidInput(f"RMA {self.id} has no line for SKU {sku}") from None

    def _key(self, sku: str, step: str) -> str:
        self._seq += 1
        return f"rma:{self.id}:{sku}:{self._seq}:{step}"

    # ── receiving ──────────────────────────────────────────────────────────
    def receive(self, sku: str, qty: int, location: str) -> list[Movement]:
        """Units arrive at ``location``: they go straight to quarantine. Returns the ledger batch."""
        if self.status is RmaStatus.GRADED or self.receiving_closed:
            raise InvalidInput(f"RMA {self.id} is closed for receiving")
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise InvalidInput(f"received quantity must be a positive whole number, got {qty!r}")
        if not location:
            raise InvalidInput("received units need a location")
        line = self._line(sku)
        if line.location is not None and line.location != location:
            raise InvalidInput(f"RMA {self.id}: {sku} is being received at {line.location}, not {location}")
        if line.qty_received + qty > line.qty_requested:
            raise InvalidInput(
                f"RMA {self.id}: receiving {qty} of {sku} would exceed the {line.qty_requested} requested "
                f"({line.qty_received} already received)"
            )
        line.location = location
        line.qty_received += qty
        if self.status is RmaStatus.REQUESTED:
            self.status = RmaStatus.RECEIVED
        return receive_into_quarantine(self.id, sku, location, qty, self._key(sku, "receive"))

    def close_receiving(self) -> None:
        """The rest will not come back: grading what arrived completes the RMA."""
        self.receiving_closed = True
        self._maybe_complete()

    # ── grading ────────────────────────────────────────────────────────────
    def grade(self, sku: str, qty: int, grade: Grade) -> list[Movement]:
        """Inspect and grade ``qty`` received units; returns the ledger batch that grade implies."""
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise InvalidInput(f"graded quantity must be a positive whole number, got {qty!r}")
        line = self._line(sku)
        if qty > line.qty_awaiting_grade:
            raise InvalidInput(
                f"RMA {self.id}: cannot grade {qty} of {sku}: only {line.qty_awaiting_grade} received and not yet "
                f"graded ({line.qty_received} received in all)"
            )
        assert line.location is not None  # qty_received > 0
        line.graded[grade] = line.graded.get(grade, 0) + qty
        self.status = RmaStatus.INSPECTED
        moves = grade_movements(self.id, sku, line.location, qty, grade, self._key(sku, grade.value))
        self._maybe_complete()
        return moves

    def _maybe_complete(self) -> None:
        lines = self.lines.values()
        all_in = all(ln.qty_received == ln.qty_requested for ln in lines) or self.receiving_closed
        if all_in and all(ln.qty_awaiting_grade == 0 for ln in lines) and any(ln.qty_received for ln in lines):
            self.status = RmaStatus.GRADED
            if self.refund_state is RefundState.NOT_DUE:
                self.refund_state = RefundState.DUE

    # ── money ──────────────────────────────────────────────────────────────
    @property
    def refundable_now(self) -> bool:
        """Due after grading; on request already when the policy does not require the units back first."""
        if self.refund_state is RefundState.DUE:
            return True
        return self.refund_state is RefundState.NOT_DUE and not self.policy.refund_requires_receipt

    def refund_breakdown(self) -> RefundBreakdown:
        """Unit price × units refunded (received ones; requested ones when the policy refunds on request), less
        the restocking fee and the return label when the buyer is at fault (changed mind) and pays return shipping.
        """
        by_receipt = self.policy.refund_requires_receipt or self.refund_state is RefundState.DUE
        units = sum(ln.qty_received if by_receipt else ln.qty_requested for ln in self.lines.values())
        value = sum(
            ln.unit_price_minor * (ln.qty_received if by_receipt else ln.qty_requested) for ln in self.lines.values()
        )
        if self.reason.seller_fault or value == 0:
            return RefundBreakdown(units, value, 0, 0, value)
        fee = value * self.policy.restocking_fee_pct // 100
        label = self.policy.return_label_cost_minor if self.policy.return_shipping_paid_by is Payer.BUYER else 0
        label = min(label, value - fee)
        return RefundBreakdown(units, value, fee, label, value - fee - label)

    def refund_due_minor(self) -> int:
        """Value of the refunded units, less the restocking fee and return label when the buyer is at fault."""
        return self.refund_breakdown().due_minor

    def mark_refunded(self, amount_minor: int) -> None:
        if self.refund_state is RefundState.REFUNDED:
            raise InvalidInput(f"RMA {self.id}: already refunded ({self.refunded_minor})")
        if not self.refundable_now:
            raise InvalidInput(
                f"RMA {self.id}: refund is {self.refund_state.value}, not due: policy {self.policy.name!r} refunds "
                "only once the units are received and graded"
            )
        due = self.refund_due_minor()
        if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor < 0:
            raise InvalidInput(f"RMA {self.id}: refund must be a whole number of minor units ≥ 0, got {amount_minor!r}")
        if amount_minor > due:
            raise InvalidInput(f"RMA {self.id}: refund of {amount_minor} exceeds the {due} due for the returned units")
        if amount_minor != due:
            raise InvalidInput(f"RMA {self.id}: refund of {amount_minor} does not match the {due} due")
        self.refunded_minor = amount_minor
        self.refund_state = RefundState.REFUNDED


def create_rma(
    rma_id: str,
    order_id: str,
    channel: str,
    region: str,
    policies: Mapping[str, ReturnPolicy],
    *,
    delivered_at: datetime,
    requested_at: datetime,
    requested: Mapping[str, int],
    shipped: Mapping[str, int],
    unit_price_minor: Mapping[str, int],
    already_returned: Mapping[str, int] | None = None,
    reason: ReturnReason = ReturnReason.CHANGED_MIND,
) -> Rma:
    """Open an RMA, enforcing the region's policy (window) and that no more units come back than were shipped.

    ``policies`` maps region → policy; ``shipped`` and ``already_returned`` are units per SKU on the order.
    """
    if not rma_id or not order_id:
        raise InvalidInput("RMA needs an id and an order")
    policy = policies.get(region)
    if policy is None:
        raise NotFound("return policy for region", region)
    if not requested:
        raise InvalidInput(f"RMA {rma_id} asks to return nothing")
    if requested_at < delivered_at:
        raise InvalidInput(f"RMA {rma_id}: requested before the order was delivered")
    deadline = delivered_at + timedelta(days=policy.window_days)
    if requested_at > deadline:
        days = (requested_at - delivered_at).days
        raise ReturnRejected(
            f"return rejected by rule {policy.name!r} (region {region}): requested {days} days after delivery, "
            f"window is {policy.window_days} days (ended {deadline.isoformat()})",
            rule=policy.name,
        )
    back = already_returned or {}
    lines: dict[str, RmaLine] = {}
    for sku, qty in requested.items():
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise InvalidInput(f"RMA {rma_id}: quantity for {sku} must be a positive whole number, got {qty!r}")
        sent = shipped.get(sku, 0)
        if sent == 0:
            raise InvalidInput(f"RMA {rma_id}: {sku} was never shipped on order {order_id}")
        if qty + back.get(sku, 0) > sent:
            raise InvalidInput(
                f"RMA {rma_id}: returning {qty} of {sku} but only {sent} shipped ({back.get(sku, 0)} already returned)"
            )
        price = unit_price_minor.get(sku)
        if price is None or price < 0:
            raise InvalidInput(f"RMA {rma_id}: no unit price for {sku}")
        lines[sku] = RmaLine(sku, qty, price)
    return Rma(rma_id, order_id, channel, policy, reason, requested_at, lines)


# ── ledger plans ─────────────────────────────────────────────────────────────


def receive_into_quarantine(rma_id: str, sku: str, location: str, qty: int, key: str) -> list[Movement]:
    """RECEIVE then QUARANTINE, one batch: on_hand +q −q, quarantine +q — never available."""
    return [
        Movement(MovementKind.RECEIVE, sku, location, qty, f"{key}:receive", ref=rma_id),
        Movement(
            MovementKind.QUARANTINE,
            sku,
            location,
            qty,
            f"{key}:quarantine",
            reason="return awaiting inspection",
            ref=rma_id,
        ),
    ]


def grade_movements(rma_id: str, sku: str, location: str, qty: int, grade: Grade, key: str) -> list[Movement]:
    """The ledger batch a grade implies for units sitting in quarantine at ``location``."""
    reason = f"return graded {grade.value}"
    if grade is Grade.RESELLABLE:
        return [
            Movement(MovementKind.UNQUARANTINE, sku, location, qty, f"{key}:unquarantine", reason=reason, ref=rma_id)
        ]
    if grade is Grade.REFURBISH:
        return []  # stays in quarantine until released after refurbishment
    if grade is Grade.DAMAGED:
        return [
            Movement(MovementKind.UNQUARANTINE, sku, location, qty, f"{key}:unquarantine", reason=reason, ref=rma_id),
            Movement(MovementKind.DAMAGE, sku, location, qty, f"{key}:damage", reason=reason, ref=rma_id),
        ]
    return [
        Movement(
            MovementKind.SCRAP,
            sku,
            location,
            qty,
            f"{key}:scrap",
            reason=reason,
            ref=rma_id,
            source_bucket="quarantine",
        )
    ]


def release_refurbished(rma: Rma, sku: str, qty: int) -> list[Movement]:
    """Refurbished units are sellable again: quarantine → on_hand."""
    line = rma._line(sku)
    refurb = line.graded.get(Grade.REFURBISH, 0)
    if qty <= 0 or qty > refurb:
        raise InvalidInput(f"RMA {rma.id}: cannot release {qty} of {sku}; {refurb} graded refurbish")
    assert line.location is not None
    line.graded[Grade.REFURBISH] = refurb - qty
    line.graded[Grade.RESELLABLE] = line.graded.get(Grade.RESELLABLE, 0) + qty
    key = rma._key(sku, "refurbished")
    return [
        Movement(
            MovementKind.UNQUARANTINE,
            sku,
            line.location,
            qty,
            f"{key}:unquarantine",
            reason="refurbished",
            ref=rma.id,
        )
    ]
