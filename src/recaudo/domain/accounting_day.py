"""Accounting days: which business day a payment belongs to, given the bank's cut-off.

A payment made on business day N up to the cut-off belongs to N; after the cut-off, or
on a weekend or holiday, it belongs to the next business day. With cut-off 14:00, a
payment on Friday 14:01 through Monday 14:00 has Monday's date.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

DEFAULT_CUTOFF = time(14, 0)


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Weekends (Saturday, Sunday) and the given holidays are not business days."""

    holidays: frozenset[date]

    @classmethod
    def of(cls, holidays: Iterable[date]) -> BusinessCalendar:
        return cls(frozenset(holidays))

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_business_day(day):
            day += timedelta(days=1)
        return day

    def business_day_on_or_after(self, day: date) -> date:
        return day if self.is_business_day(day) else self.next_business_day(day)


def accounting_date(
    local_moment: datetime, cutoff: time, is_business_day: Callable[[date], bool]
) -> date:
    """The accounting date of a payment made at `local_moment` (the company's local time).

    Up to and including the cut-off minute counts for the day itself (14:00:59 is still
    14:00); anything later moves to the next business day.
    """
    day = local_moment.date()
    moment = local_moment.time().replace(second=0, microsecond=0, tzinfo=None)
    after_cutoff = moment > cutoff.replace(second=0, microsecond=0)
    if is_business_day(day) and not after_cutoff:
        return day
    day += timedelta(days=1)
    while not is_business_day(day):
        day += timedelta(days=1)
    return day
