"""Calendar-month arithmetic, shared by the schedules (commitments, payment plans)."""

from __future__ import annotations

import calendar
from datetime import date

from recaudo.domain.errors import ValidationFailed


def add_months(day: date, months: int, *, anchor_day: int | None = None) -> date:
    """`day` moved by `months` calendar months, on `anchor_day` (default: `day`'s day)
    clamped to the target month's last day: Jan 31 + 1 → Feb 28 (29), + 2 → Mar 31."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if not 1 <= year <= 9999:
        raise ValidationFailed(f"date out of range: {months} months after {day}")
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day or day.day, last))
