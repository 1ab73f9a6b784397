"""Who is acting and what time it is: both are passed in, never looked up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from recaudo.domain.errors import PermissionDenied

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"
    # Back office only (no API keys): finds customers, registers office payments in cash
    # or cheque and prints their receipts; nothing else.
    CASHIER = "cashier"


WRITE_ROLES = frozenset({Role.ADMIN, Role.OPERATOR})
# Who may register a payment taken at the office counter in cash or by cheque.
OFFICE_PAYMENT_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.CASHIER})
# The roles an API key may carry: the cashier works in the back office only.
API_KEY_ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.AUDITOR})


@dataclass(frozen=True, slots=True)
class Actor:
    """The user, API key, channel or system process behind a change.

    `label` is what the audit trail shows (`api_key:3`, `cli:root`, `channel:bancoestado`);
    `company_id` is set when the actor is bound to one company, and then every use case
    refuses to touch another company's data.
    """

    label: str
    role: Role = Role.ADMIN
    company_id: int | None = None

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            # Sorted: WRITE_ROLES is a frozenset, whose order changes with the hash seed.
            allowed = ", ".join(sorted(r.value for r in roles))
            raise PermissionDenied(f"role {self.role} may not do this (needs {allowed})")

    def require_write(self) -> None:
        self.require(*WRITE_ROLES)

    def can_see(self, company_id: int) -> bool:
        return self.company_id is None or self.company_id == company_id


SYSTEM = Actor("system")
