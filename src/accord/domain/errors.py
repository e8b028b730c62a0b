"""Domain errors. Each carries a stable ``code`` that the API maps to a problem type and status."""

from __future__ import annotations


class AccordError(Exception):
    """Base of every error Accord raises on purpose; ``str(err)`` is one line for a person."""

    code = "accord-error"


class InvalidInput(AccordError):
    """The request itself is malformed: a non-positive quantity, an unknown kind, a bad field."""

    code = "invalid-input"


class NotFound(AccordError):
    """A referenced SKU, location, channel, transfer or event does not exist."""

    code = "not-found"

    def __init__(self, entity: str, ident: str) -> None:
        super().__init__(f"unknown {entity} {ident!r}")
        self.entity = entity
        self.ident = ident


class AlreadyExists(AccordError):
    code = "already-exists"


class InsufficientStock(AccordError):
    """A movement would take more than a bucket holds."""

    code = "insufficient-stock"


class IdempotencyConflict(AccordError):
    """The same idempotency key was used before with a different payload."""

    code = "idempotency-key-reused"


class InvalidConfiguration(AccordError):
    """A location, channel or policy setting breaks a rule (e.g. platform stock on a foreign channel)."""

    code = "invalid-configuration"


class Unauthorized(AccordError):
    code = "unauthorized"
