"""Payments: their states and the methods money arrives by."""

from __future__ import annotations

from enum import StrEnum


class PaymentStatus(StrEnum):
    APPLIED = "applied"
    REVERSED = "reversed"
    EXCEPTION = "exception"  # collected but not applicable as asked: a person resolves it


class PaymentMethod(StrEnum):
    CASH = "cash"
    CHEQUE = "cheque"
    TRANSFER = "transfer"
    CARD = "card"
    DIRECT_DEBIT = "direct_debit"
    BANK_DEBIT = "bank_debit"  # PSE and other online bank debits
    BIZUM = "bizum"
    PAYPAL = "paypal"
    OTHER = "other"


OFFICE_CHANNEL = "office"
