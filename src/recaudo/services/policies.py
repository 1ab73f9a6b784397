"""Viability policies: which negotiation strategies a late obligation may get, as data.

A policy is one rule of one strategy, written in the `rule-engine` expression language
(`days_past_due >= 30 and balance <= 5000000`), never Python, never SQL. A rule sees only
the facts listed in `FACTS` (the obligation, its customer and the offer being judged);
it is compiled when it is saved, with a typed context that refuses any other symbol, any
attribute access (`product_type.__class__`, `foo.bar`), any `$` built-in, regular
expressions (a pattern can take exponential time), and anything that is not a yes/no
question. A strategy is viable for an obligation when the company
has at least one active policy for it and every one of them holds, or an exception an
admin granted overrides the rule that fails; each failing rule names its cause.

Exceptions are granted per customer (and optionally one debt) and rule, with a reason
and an expiry date, by `Role.ADMIN` only; they are recorded and audited, and the
negotiation that uses one is written on it (an exception serves one negotiation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import rule_engine
from rule_engine import DataType
from rule_engine import ast as rule_ast
from sqlalchemy import select

from recaudo.adapters.db.tables import Company, Customer, Debt, PolicyException, ViabilityPolicy
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.domain.errors import Conflict, NotFound, ValidationFailed
from recaudo.domain.strategies import StrategyParameters, parse_strategy
from recaudo.services import audit
from recaudo.services.context import Actor, Clock, Role

MAX_RULE_CHARS = 1000
NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
CAUSE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
EXCEPTION_NAME = re.compile(r"^[A-Z0-9_]{1,40}$")

# The only symbols a rule may name, with their types (amounts in currency units).
FACTS: Mapping[str, DataType] = {
    # the obligation
    "days_past_due": DataType.FLOAT,
    "balance": DataType.FLOAT,
    "overdue_amount": DataType.FLOAT,
    "product_type": DataType.STRING,
    # its customer
    "customer_days_past_due": DataType.FLOAT,
    "customer_balance": DataType.FLOAT,
    "customer_overdue_amount": DataType.FLOAT,
    "earlier_negotiations": DataType.FLOAT,
    "broken_negotiations": DataType.FLOAT,
    "months_since_last_negotiation": DataType.FLOAT,  # null: never negotiated
    "installments_paid": DataType.FLOAT,
    # the offer being judged
    "term": DataType.FLOAT,
    "payment_today": DataType.FLOAT,
    "new_installment": DataType.FLOAT,
    "total_condoned": DataType.FLOAT,
}


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule may know of one obligation, its customer and the offer."""

    days_past_due: int
    balance: Decimal
    overdue_amount: Decimal
    product_type: str
    customer_days_past_due: int
    customer_balance: Decimal
    customer_overdue_amount: Decimal
    earlier_negotiations: int
    broken_negotiations: int
    months_since_last_negotiation: int | None
    installments_paid: int
    term: int = 0
    payment_today: Decimal = Decimal(0)
    new_installment: Decimal = Decimal(0)
    total_condoned: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, kind in FACTS.items():
            value = getattr(self, name)
            if value is None:
                out[name] = None
            elif kind is DataType.FLOAT:
                out[name] = Decimal(value)
            else:
                out[name] = str(value)
        return out


# --- compiling rules ------------------------------------------------------------------


def _children(node: object) -> Iterable[object]:
    """Every sub-expression of an AST node (its slots and its instance attributes)."""
    names = [slot for cls in type(node).__mro__ for slot in getattr(cls, "__slots__", ())]
    names += list(getattr(node, "__dict__", {}))
    for name in dict.fromkeys(names):
        if name != "context":
            value = getattr(node, name, None)
            if isinstance(value, rule_ast.ASTNodeBase):
                yield value
            elif isinstance(value, tuple | list):
                for item in value:
                    if isinstance(item, rule_ast.ASTNodeBase):
                        yield item
                    elif isinstance(item, tuple | list):  # mapping literals: key/value pairs
                        yield from (x for x in item if isinstance(x, rule_ast.ASTNodeBase))


def _check_tree(node: object, text: str) -> None:
    if isinstance(node, rule_ast.FuzzyComparisonExpression):
        # A regular expression an admin types could take exponential time on a value.
        raise ValidationFailed(
            "a policy rule may not use regular expressions (=~, !~): compare with ==, != or in",
            field="rule",
            rule=text,
        )
    if isinstance(node, rule_ast.GetAttributeExpression):
        raise ValidationFailed(
            f"a policy rule may not use attribute access ({node.name!r}): it may only "
            "compare the facts " + ", ".join(FACTS),
            field="rule",
            rule=text,
        )
    if isinstance(node, rule_ast.SymbolExpression) and (
        node.scope is not None or node.name not in FACTS
    ):
        shown = f"${node.name}" if node.scope else node.name
        raise ValidationFailed(
            f"a policy rule may not name {shown!r}: the known facts are " + ", ".join(FACTS),
            field="rule",
            rule=text,
        )
    for child in _children(node):
        _check_tree(child, text)


def _context() -> rule_engine.Context:
    return rule_engine.Context(
        type_resolver=rule_engine.type_resolver_from_dict(dict(FACTS)),
        resolver=rule_engine.resolve_item,
        default_timezone="UTC",
    )


@lru_cache(maxsize=1024)
def compile_rule(text: str) -> rule_engine.Rule:
    """The rule, checked: only `FACTS`, no attribute access, no built-ins, a yes/no answer.

    Raises `ValidationFailed` (field `rule`) with what is wrong; never evaluates anything.
    """
    if not text.strip():
        raise ValidationFailed("a policy rule cannot be empty", field="rule")
    if len(text) > MAX_RULE_CHARS:
        raise ValidationFailed(
            f"a policy rule has at most {MAX_RULE_CHARS} characters", field="rule"
        )
    try:
        rule = rule_engine.Rule(text, context=_context())
    except rule_engine.SymbolResolutionError as exc:
        raise ValidationFailed(
            f"a policy rule may not name {exc.symbol_name!r}: the known facts are "
            + ", ".join(FACTS),
            field="rule",
            rule=text,
        ) from None
    except rule_engine.AttributeResolutionError as exc:
        raise ValidationFailed(
            f"a policy rule may not use attribute access ({exc.attribute_name!r}): it may "
            "only compare the facts " + ", ".join(FACTS),
            field="rule",
            rule=text,
        ) from None
    except rule_engine.EngineError as exc:
        raise ValidationFailed(
            f"the policy rule is not valid: {exc.message}", field="rule", rule=text
        ) from None
    _check_tree(rule.statement, text)
    result = rule.statement.expression.result_type
    if result is not DataType.BOOLEAN and result is not DataType.UNDEFINED:
        raise ValidationFailed(
            f"a policy rule must be a yes/no condition, this one gives a {result.name}",
            field="rule",
            rule=text,
        )
    return rule


def rule_holds(text: str, facts: Facts) -> bool:
    """Whether the (already saved, so valid) rule holds for `facts`.

    A rule that cannot be evaluated on these facts (a null compared with a number, say)
    does not hold: a policy never makes an offer by accident.
    """
    try:
        return bool(compile_rule(text).matches(facts.as_dict()))
    except (rule_engine.EngineError, ValidationFailed):
        return False


# --- policies ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPolicy:
    name: str
    strategy: str
    rule: str
    cause: str
    message: str
    exception_name: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True


@dataclass(frozen=True, slots=True)
class PolicyChanges:
    """What an update changes; `None` keeps the current value."""

    rule: str | None = None
    cause: str | None = None
    message: str | None = None
    exception_name: str | None = None
    parameters: Mapping[str, Any] | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class PolicyView:
    id: int
    company_id: int
    name: str
    strategy: str
    rule: str
    cause: str
    message: str
    exception_name: str | None
    parameters: dict[str, Any]
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


def policy_view(p: ViabilityPolicy) -> PolicyView:
    return PolicyView(
        p.id,
        p.company_id,
        p.name,
        p.strategy,
        p.rule,
        p.cause,
        p.message,
        p.exception_name,
        dict(p.parameters or {}),
        p.active,
        p.created_by,
        p.created_at,
        p.updated_at,
    )


def _snapshot(p: ViabilityPolicy) -> dict[str, Any]:
    return {
        "name": p.name,
        "strategy": p.strategy,
        "rule": p.rule,
        "cause": p.cause,
        "message": p.message,
        "exception_name": p.exception_name,
        "parameters": dict(p.parameters or {}),
        "active": p.active,
    }


def _clean_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(parameters, Mapping):
        raise ValidationFailed("parameters must be an object", field="parameters")
    try:
        params = StrategyParameters.from_dict(parameters)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field="parameters") from None
    clean = params.to_dict()
    # Keep only what was given, in the canonical form (defaults are not stored).
    return {k: v for k, v in clean.items() if k in parameters}


def _clean_text(value: str, pattern: re.Pattern[str], field_name: str, what: str) -> str:
    text = value.strip()
    if not pattern.match(text):
        raise ValidationFailed(f"{field_name} {what}", field=field_name)
    return text


def _clean_message(message: str) -> str:
    text = message.strip()
    if not 1 <= len(text) <= 300:
        raise ValidationFailed("message must have 1 to 300 characters", field="message")
    return text


def _clean_exception_name(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    return _clean_text(
        name.upper(),
        EXCEPTION_NAME,
        "exception_name",
        "must be 1 to 40 capital letters, digits or '_' (e.g. EXC_DIAS_MORA)",
    )


def _company(uow: UnitOfWork, company_id: int, actor: Actor) -> Company:
    company = uow.session.get(Company, company_id)
    if company is None or not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    return company


def add_policy(
    uow: UnitOfWork, company_id: int, new: NewPolicy, *, actor: Actor, clock: Clock
) -> PolicyView:
    """Save a policy; its rule is compiled first and refused with a clear error if unsafe."""
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    name = _clean_text(
        new.name, NAME, "name", "must have 1 to 100 characters, no control characters"
    )
    strategy = parse_strategy(new.strategy).value
    compile_rule(new.rule)
    cause = _clean_text(
        new.cause, CAUSE, "cause", "must be 1 to 100 letters, digits, '.', '_' or '-'"
    )
    message = _clean_message(new.message)
    exception_name = _clean_exception_name(new.exception_name)
    parameters = _clean_parameters(new.parameters)
    with uow:
        _company(uow, company_id, actor)
        taken = uow.session.scalar(
            select(ViabilityPolicy.id).where(
                ViabilityPolicy.company_id == company_id, ViabilityPolicy.name == name
            )
        )
        if taken is not None:
            raise Conflict(f"a policy named {name!r} exists already", field="name")
        now = clock()
        policy = ViabilityPolicy(
            company_id=company_id,
            name=name,
            strategy=strategy,
            rule=new.rule.strip(),
            cause=cause,
            message=message,
            exception_name=exception_name,
            parameters=parameters,
            active=new.active,
            created_by=actor.label,
            created_at=now,
            updated_at=now,
        )
        uow.session.add(policy)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="policy.created",
            entity_type="viability_policy",
            entity_id=policy.id,
            after=_snapshot(policy),
        )
        uow.commit()
        return policy_view(policy)


def _load(uow: UnitOfWork, company_id: int, policy_id: int, actor: Actor) -> ViabilityPolicy:
    policy = uow.session.get(ViabilityPolicy, policy_id)
    if policy is None or policy.company_id != company_id or not actor.can_see(company_id):
        raise NotFound(f"no policy {policy_id}")
    return policy


def update_policy(
    uow: UnitOfWork,
    company_id: int,
    policy_id: int,
    changes: PolicyChanges,
    *,
    actor: Actor,
    clock: Clock,
) -> PolicyView:
    """Change a policy's rule, cause, message, parameters or whether it is active."""
    actor.require(Role.ADMIN)
    if changes.rule is not None:
        compile_rule(changes.rule)
    with uow:
        policy = _load(uow, company_id, policy_id, actor)
        before = _snapshot(policy)
        if changes.rule is not None:
            policy.rule = changes.rule.strip()
        if changes.cause is not None:
            policy.cause = _clean_text(
                changes.cause, CAUSE, "cause", "must be 1 to 100 letters, digits, '.', '_' or '-'"
            )
        if changes.message is not None:
            policy.message = _clean_message(changes.message)
        if changes.exception_name is not None:
            policy.exception_name = _clean_exception_name(changes.exception_name)
        if changes.parameters is not None:
            policy.parameters = _clean_parameters(changes.parameters)
        if changes.active is not None:
            policy.active = changes.active
        after = _snapshot(policy)
        if after != before:
            policy.updated_at = clock()
            audit.record(
                uow,
                actor=actor,
                clock=clock,
                company_id=company_id,
                action="policy.updated",
                entity_type="viability_policy",
                entity_id=policy.id,
                before=before,
                after=after,
            )
        uow.commit()
        return policy_view(policy)


def disable_policy(
    uow: UnitOfWork, company_id: int, policy_id: int, *, actor: Actor, clock: Clock
) -> PolicyView:
    """A policy is never deleted (exceptions and the audit trail name it): it is disabled."""
    return update_policy(
        uow, company_id, policy_id, PolicyChanges(active=False), actor=actor, clock=clock
    )


def get_policy(uow: UnitOfWork, company_id: int, policy_id: int, *, actor: Actor) -> PolicyView:
    with uow:
        return policy_view(_load(uow, company_id, policy_id, actor))


def list_policies(
    uow: UnitOfWork,
    company_id: int,
    *,
    actor: Actor,
    strategy: str | None = None,
    active: bool | None = None,
) -> list[PolicyView]:
    code = parse_strategy(strategy).value if strategy else None
    with uow:
        _company(uow, company_id, actor)
        stmt = select(ViabilityPolicy).where(ViabilityPolicy.company_id == company_id)
        if code is not None:
            stmt = stmt.where(ViabilityPolicy.strategy == code)
        if active is not None:
            stmt = stmt.where(ViabilityPolicy.active.is_(active))
        return [policy_view(p) for p in uow.session.scalars(stmt.order_by(ViabilityPolicy.id))]


def active_policies(uow: UnitOfWork, company_id: int) -> list[ViabilityPolicy]:
    """The company's active policies in id order (inside the caller's unit of work)."""
    return list(
        uow.session.scalars(
            select(ViabilityPolicy)
            .where(ViabilityPolicy.company_id == company_id, ViabilityPolicy.active.is_(True))
            .order_by(ViabilityPolicy.id)
        )
    )


# --- exceptions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewException:
    customer_id: int
    policy_id: int
    reason: str
    valid_until: date
    debt: str | None = None  # the company's debt id; none: any of the customer's debts


@dataclass(frozen=True, slots=True)
class ExceptionView:
    id: int
    company_id: int
    customer_id: int
    policy_id: int
    policy_name: str
    exception_name: str | None
    debt: str | None
    reason: str
    granted_by: str
    granted_at: datetime
    valid_until: date
    negotiation_id: int | None


def exception_view(
    e: PolicyException, policy: ViabilityPolicy, debt_ref: str | None
) -> ExceptionView:
    return ExceptionView(
        e.id,
        e.company_id,
        e.customer_id,
        e.policy_id,
        policy.name,
        policy.exception_name,
        debt_ref,
        e.reason,
        e.granted_by,
        e.granted_at,
        e.valid_until,
        e.negotiation_id,
    )


def grant_exception(
    uow: UnitOfWork, company_id: int, new: NewException, *, actor: Actor, clock: Clock
) -> ExceptionView:
    """An admin overrides one rule for one customer (optionally one debt) until a date.

    Anyone else gets `PermissionDenied`; the grant, its reason and its author are audited.
    """
    actor.require(Role.ADMIN)
    if not actor.can_see(company_id):
        raise NotFound(f"no company {company_id}")
    reason = new.reason.strip()
    if not 3 <= len(reason) <= 1000:
        raise ValidationFailed(
            "an exception needs a reason of 3 to 1000 characters", field="reason"
        )
    with uow:
        _company(uow, company_id, actor)
        policy = _load(uow, company_id, new.policy_id, actor)
        if not policy.active:
            raise Conflict(f"policy {policy.name!r} is disabled", field="policy_id")
        customer = uow.session.get(Customer, new.customer_id)
        if customer is None or customer.company_id != company_id:
            raise NotFound(f"no customer {new.customer_id}", field="customer_id")
        debt_id: int | None = None
        if new.debt is not None:
            debt = uow.session.scalar(
                select(Debt).where(Debt.company_id == company_id, Debt.external_id == new.debt)
            )
            if debt is None or debt.customer_id != customer.id:
                raise NotFound(f"no debt {new.debt!r} of customer {customer.id}", field="debt")
            debt_id = debt.id
        now = clock()
        if new.valid_until < now.date():
            raise ValidationFailed("valid_until is in the past", field="valid_until")
        granted = PolicyException(
            company_id=company_id,
            customer_id=customer.id,
            policy_id=policy.id,
            debt_id=debt_id,
            reason=reason,
            granted_by=actor.label,
            granted_at=now,
            valid_until=new.valid_until,
        )
        uow.session.add(granted)
        uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            clock=clock,
            company_id=company_id,
            action="policy_exception.granted",
            entity_type="policy_exception",
            entity_id=granted.id,
            after={
                "policy": policy.name,
                "exception_name": policy.exception_name,
                "customer_id": customer.id,
                "debt": new.debt,
                "reason": reason,
                "valid_until": new.valid_until,
            },
        )
        uow.commit()
        return exception_view(granted, policy, new.debt)


def list_exceptions(
    uow: UnitOfWork, company_id: int, *, actor: Actor, customer_id: int | None = None
) -> list[ExceptionView]:
    with uow:
        _company(uow, company_id, actor)
        stmt = (
            select(PolicyException, ViabilityPolicy, Debt.external_id)
            .join(ViabilityPolicy, ViabilityPolicy.id == PolicyException.policy_id)
            .outerjoin(Debt, Debt.id == PolicyException.debt_id)
            .where(PolicyException.company_id == company_id)
        )
        if customer_id is not None:
            stmt = stmt.where(PolicyException.customer_id == customer_id)
        rows = uow.session.execute(stmt.order_by(PolicyException.id)).all()
        return [exception_view(e, p, ref) for e, p, ref in rows]


def open_exceptions(
    uow: UnitOfWork, company_id: int, customer_id: int, as_of: date
) -> list[PolicyException]:
    """Unused, unexpired exceptions of a customer (inside the caller's unit of work)."""
    return list(
        uow.session.scalars(
            select(PolicyException)
            .where(
                PolicyException.company_id == company_id,
                PolicyException.customer_id == customer_id,
                PolicyException.negotiation_id.is_(None),
                PolicyException.valid_until >= as_of,
            )
            .order_by(PolicyException.id)
        )
    )


# --- judging a strategy ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a strategy is not viable: the failing rule's cause name and message."""

    policy: str
    cause: str
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    viable: bool
    causes: tuple[Cause, ...]
    exceptions: tuple[int, ...]  # ids of the exceptions that overrode failing rules


def judge(
    policies: Sequence[ViabilityPolicy],
    facts: Facts,
    exceptions: Sequence[PolicyException],
    *,
    debt_id: int,
) -> Verdict:
    """Every rule of `policies` (one strategy's) against `facts`; a failing rule with an
    exception for this debt (or for any debt of the customer) is overridden."""
    causes: list[Cause] = []
    used: list[int] = []
    for policy in policies:
        if rule_holds(policy.rule, facts):
            continue
        granted = next(
            (
                e
                for e in exceptions
                if e.policy_id == policy.id and (e.debt_id is None or e.debt_id == debt_id)
            ),
            None,
        )
        if granted is not None:
            used.append(granted.id)
            continue
        causes.append(Cause(policy.name, policy.cause, policy.message))
    return Verdict(not causes, tuple(causes), tuple(used))


def strategy_parameters(policies: Sequence[ViabilityPolicy]) -> dict[str, Any]:
    """One strategy's offer parameters: its policies' parameters merged in id order."""
    merged: dict[str, Any] = {}
    for policy in sorted(policies, key=lambda p: p.id):
        merged.update(policy.parameters or {})
    return merged
