"""The company's business calendar: its country's public and bank holidays plus its own."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from types import MappingProxyType
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from recaudo.adapters.db.tables import Company, CompanyHoliday
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.accounting_day import BusinessCalendar, accounting_date
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.services import audit
from recaudo.services.context import Actor, Clock

# Chile's banks also close on the bank holiday of 31 December; the `holidays` package
# files it under the BANK category.
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "CL": ("public", "bank"),
    "CO": ("public",),
    "ES": ("public",),
}


@functools.lru_cache(maxsize=256)
def national_holidays(country: str, years: range) -> Mapping[date, str]:
    """The country's holidays in `years` (read-only; cached: building them costs ~2 ms)."""
    found = holidays.country_holidays(
        country, years=years, categories=_CATEGORIES.get(country, ("public",))
    )
    return MappingProxyType({day: str(name) for day, name in found.items()})


def years_around(day: date) -> range:
    """The years a calendar around `day` covers (enough to roll over a year end)."""
    return range(day.year - 1, day.year + 2)


def calendar_of(country: str, years: range, own: Iterable[date]) -> BusinessCalendar:
    """The country's holidays in `years` plus the company's own days."""
    return BusinessCalendar.of([*national_holidays(country, years), *own])


def business_calendar(uow: UnitOfWork, company: Company, around: date) -> BusinessCalendar:
    """The calendar for the years around `around`."""
    years = years_around(around)
    own = uow.session.scalars(
        select(CompanyHoliday.day).where(
            CompanyHoliday.company_id == company.id,
            CompanyHoliday.day >= date(years.start, 1, 1),
            CompanyHoliday.day < date(years.stop, 1, 1),
        )
    )
    return calendar_of(company.country, years, own)


def accounting_date_of(uow: UnitOfWork, company: Company, paid_at: datetime, cutoff: time) -> date:
    """Accounting date of a payment made at `paid_at` (aware), in the company's time zone."""
    local = paid_at.astimezone(ZoneInfo(company.timezone))
    calendar = business_calendar(uow, company, local.date())
    return accounting_date(local.replace(tzinfo=None), cutoff, calendar.is_business_day)


def add_holiday(
    uow: UnitOfWork, company_id: int, day: date, name: str, *, actor: Actor, clock: Clock
) -> CompanyHoliday:
    actor.require_write()
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise ValidationFailed("a holiday needs a name of 1 to 100 characters", field="name")
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    with uow:
        holiday = CompanyHoliday(company_id=company_id, day=day, name=name, created_at=clock())
        uow.session.add(holiday)
        try:
            uow.session.flush()
        except IntegrityError:
            raise Conflict(f"{day.isoformat()} is already a holiday of this company") from None
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="holiday.added",
            entity_type="holiday",
            entity_id=holiday.id,
            after={"day": day, "name": name},
        )
        uow.commit()
    return holiday


def remove_holiday(
    uow: UnitOfWork, company_id: int, day: date, *, actor: Actor, clock: Clock
) -> None:
    actor.require_write()
    with uow:
        holiday = uow.session.scalar(
            select(CompanyHoliday).where(
                CompanyHoliday.company_id == company_id, CompanyHoliday.day == day
            )
        )
        if holiday is None or not actor.can_see(company_id):
            raise NotFound(f"{day.isoformat()} is not a holiday of this company")
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="holiday.removed",
            entity_type="holiday",
            entity_id=holiday.id,
            before={"day": day, "name": holiday.name},
        )
        uow.session.delete(holiday)
        uow.commit()


def list_holidays(uow: UnitOfWork, company: Company, year: int) -> list[tuple[date, str, bool]]:
    """The holidays of `year`: (day, name, whether the company added it itself)."""
    national = national_holidays(company.country, range(year, year + 1))
    own = {
        h.day: h.name
        for h in uow.session.scalars(
            select(CompanyHoliday).where(
                CompanyHoliday.company_id == company.id,
                CompanyHoliday.day >= date(year, 1, 1),
                CompanyHoliday.day <= date(year, 12, 31),
            )
        )
    }
    rows = [(d, n, False) for d, n in national.items()] + [(d, n, True) for d, n in own.items()]
    return sorted(rows)
