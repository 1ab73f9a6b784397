"""Accounting dates with the bank's own examples, holidays and a year end."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from recaudo.domain.accounting_day import BusinessCalendar, accounting_date

CUTOFF = time(14, 0)
# 2026-11-19 is a Thursday; 2026-11-20 Friday; 2026-11-23 Monday.
PLAIN = BusinessCalendar.of([])


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 20, 14, 0), date(2026, 11, 20)),  # Friday at the cut-off
        (datetime(2026, 11, 20, 14, 0, 59), date(2026, 11, 20)),  # still the 14:00 minute
        (datetime(2026, 11, 20, 14, 1), date(2026, 11, 23)),  # Friday 14:01 -> Monday
        (datetime(2026, 11, 21, 10, 0), date(2026, 11, 23)),  # Saturday -> Monday
        (datetime(2026, 11, 22, 23, 59), date(2026, 11, 23)),  # Sunday night -> Monday
        (datetime(2026, 11, 23, 14, 0), date(2026, 11, 23)),  # Monday 14:00 -> Monday
        (datetime(2026, 11, 23, 14, 1), date(2026, 11, 24)),  # Monday 14:01 -> Tuesday
        (datetime(2026, 11, 23, 0, 0), date(2026, 11, 23)),  # Monday midnight
    ],
)
def test_friday_after_cutoff_through_monday_cutoff_is_monday(
    moment: datetime, expected: date
) -> None:
    assert accounting_date(moment, CUTOFF, PLAIN.is_business_day) == expected


def test_thursday_holiday_moves_wednesday_afternoon_to_friday() -> None:
    calendar = BusinessCalendar.of([date(2026, 11, 19)])
    assert accounting_date(datetime(2026, 11, 18, 14, 0), CUTOFF, calendar.is_business_day) == date(
        2026, 11, 18
    )
    for moment in (
        datetime(2026, 11, 18, 14, 1),
        datetime(2026, 11, 19, 9, 0),
        datetime(2026, 11, 20, 14, 0),
    ):
        assert accounting_date(moment, CUTOFF, calendar.is_business_day) == date(2026, 11, 20)
    assert accounting_date(datetime(2026, 11, 20, 14, 1), CUTOFF, calendar.is_business_day) == date(
        2026, 11, 23
    )


def test_year_end_with_chilean_bank_holiday() -> None:
    # 2026-12-31 (Thursday) is a bank holiday in Chile and 2027-01-01 (Friday) New Year.
    calendar = BusinessCalendar.of([date(2026, 12, 31), date(2027, 1, 1)])
    moment = datetime(2026, 12, 30, 14, 30)
    assert accounting_date(moment, CUTOFF, calendar.is_business_day) == date(2027, 1, 4)
    assert calendar.next_business_day(date(2026, 12, 30)) == date(2027, 1, 4)
    assert calendar.business_day_on_or_after(date(2026, 12, 30)) == date(2026, 12, 30)


def test_other_cutoffs() -> None:
    assert accounting_date(
        datetime(2026, 11, 23, 18, 0), time(18, 0), PLAIN.is_business_day
    ) == date(2026, 11, 23)
    assert accounting_date(
        datetime(2026, 11, 23, 18, 1), time(18, 0), PLAIN.is_business_day
    ) == date(2026, 11, 24)
