"""What Recaudo does after the bank returns a SEPA collection, by ISO reason code.

A returned (rejected, returned or refunded) direct debit always leaves its payment
`unpaid`; the reason code decides what else happens (issue 5, "Returns"):

- AM04 (insufficient funds) and MS03 (reason not specified by the debtor's bank): the
  payment goes `to_recover`, to be collected again in a later remittance;
- AC01 (wrong account), AC04 (account closed) and MD07 (debtor deceased): collecting
  again is pointless, so the commitment ends and its responsible user is told;
- MD01 (no valid mandate) and MD02 (mandate data missing or wrong): the mandate is
  marked invalid (a new one is needed before the next collection);
- MD06 (the debtor asked for a refund of an authorised debit): `unpaid` with the refund
  flag set;
- any other code, or none: `unpaid` only.

Pure: no I/O. The Spanish descriptions of the codes live with the code lists in
`recaudo.formats.sepa_codes` (package data).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = ["FOLLOW_UPS", "ReturnFollowUp", "follow_up", "normalize_reason_code"]


class ReturnFollowUp(StrEnum):
    """The action a returned payment's reason code calls for, besides `unpaid`."""

    TO_RECOVER = "to_recover"
    END_COMMITMENT = "end_commitment"
    INVALIDATE_MANDATE = "invalidate_mandate"
    REFUND_REQUESTED = "refund_requested"
    UNPAID_ONLY = "unpaid_only"


FOLLOW_UPS: Mapping[str, ReturnFollowUp] = MappingProxyType(
    {
        "AM04": ReturnFollowUp.TO_RECOVER,
        "MS03": ReturnFollowUp.TO_RECOVER,
        "AC01": ReturnFollowUp.END_COMMITMENT,
        "AC04": ReturnFollowUp.END_COMMITMENT,
        "MD07": ReturnFollowUp.END_COMMITMENT,
        "MD01": ReturnFollowUp.INVALIDATE_MANDATE,
        "MD02": ReturnFollowUp.INVALIDATE_MANDATE,
        "MD06": ReturnFollowUp.REFUND_REQUESTED,
    }
)


def normalize_reason_code(code: str | None) -> str | None:
    """`" am04 "` → `"AM04"`; an empty or missing code → None."""
    if code is None:
        return None
    text = code.strip().upper()
    return text or None


def follow_up(code: str | None) -> ReturnFollowUp:
    """The follow-up of an ISO reason code (case and spaces ignored); UNPAID_ONLY otherwise."""
    normalized = normalize_reason_code(code)
    if normalized is None:
        return ReturnFollowUp.UNPAID_ONLY
    return FOLLOW_UPS.get(normalized, ReturnFollowUp.UNPAID_ONLY)
