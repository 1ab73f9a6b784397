"""Errors the domain and the services raise; every edge maps them to its own format."""

from __future__ import annotations


class RecaudoError(Exception):
    """Base of every expected error. `code` is stable and machine readable."""

    code = "error"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(RecaudoError):
    code = "validation_failed"


class InvalidNationalId(ValidationFailed):
    code = "invalid_national_id"


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"


class CurrencyMismatch(ValidationFailed):
    code = "currency_mismatch"


class NotFound(RecaudoError):
    code = "not_found"


class Conflict(RecaudoError):
    code = "conflict"


class DebtNotPayable(Conflict):
    code = "debt_not_payable"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class PermissionDenied(RecaudoError):
    code = "permission_denied"


class Unauthenticated(RecaudoError):
    code = "unauthenticated"


class NotViable(Conflict):
    """A negotiation strategy the company's viability policies do not allow (issue 7)."""

    code = "not_viable"
