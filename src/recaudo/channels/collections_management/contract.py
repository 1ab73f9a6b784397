"""The collections-management contract's JSON, translated to and from Recaudo's names.

This is the ONE module that knows the contract's field names (`listValidation`,
`creditAnalysis`, `partyAcctRelRec.acctId`, `indebtedness.numAsignInstallments`, ...).
It parses requests into Recaudo-named commands and renders Recaudo results back into
the contract's shapes; `routes.py` only moves bytes and calls the services.

Rules of the document applied here:
- obligation numbers (`acctId`) arrive right-padded with spaces to 20 characters;
- amounts are integers with two implied decimals (`1244` is 12.44), converted to the
  company's currency exactly: an amount with cents for CLP is refused, never rounded;
- errors are `{"responseType": {"value": "ER"}, "responseDetail": {errorCode,
  errorDesc, errorType}}` (see `ContractError`);
- partners send `null`, `""` and `0.0` for "not given" in the first policies call: all
  three read as absent where the document says the field is optional.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from recaudo.domain import money
from recaudo.domain.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    RecaudoError,
    Unauthenticated,
)
from recaudo.domain.ids import IdType
from recaudo.domain.money import Money
from recaudo.domain.negotiation import Concept
from recaudo.domain.strategies import Strategy
from recaudo.services.negotiations import (
    NegotiationView,
    NewProfile,
    ObligationOffers,
    OfferView,
    Simulation,
)

# Bodies are small JSON documents; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 1024 * 1024
MAX_ITEMS = 100  # listValidation / creditAnalysis entries per request
ACCOUNT_WIDTH = 20
CHANNEL = "collections-management"
# Amounts: at most 17 digits of cents (fits Recaudo's 10**15 minor-unit ceiling).
MAX_CENTS_DIGITS = 17

# --- errors ----------------------------------------------------------------------------


class ContractError(Exception):
    """An answer in the contract's error shape, with its HTTP status."""

    def __init__(self, status: int, code: str, kind: str, desc: str) -> None:
        super().__init__(desc)
        self.status = status
        self.code = code
        self.kind = kind
        self.desc = desc
        self.extra: dict[str, Any] = {}

    def body(self) -> dict[str, Any]:
        return {**self.extra, **error_body(self.code, self.desc, self.kind)}


def error_body(code: str, desc: str, kind: str) -> dict[str, Any]:
    return {
        "responseType": {"value": "ER"},
        "responseDetail": {"errorCode": code, "errorDesc": desc, "errorType": kind},
    }


# The document's own codes (profile and policies tables, ICS example) where one fits;
# the others follow the same pattern and are listed in docs/collections-management-contract.md.
def null_input(name: str) -> ContractError:
    return ContractError(400, "10002", "OTR", f"El objeto de Entrada es nulo: {name}")


def bad_input(name: str, reason: str) -> ContractError:
    return ContractError(400, "10007", "OTR", f"Error al transformar: {name}: {reason}")


def unauthenticated(reason: str) -> ContractError:
    return ContractError(401, "10401", "SEG", f"No autorizado: {reason}")


def account_not_found() -> ContractError:
    return ContractError(404, "00502", "DBA", "CUENTA NO EXISTE.")


def no_negotiation() -> ContractError:
    return ContractError(404, "00503", "DBA", "CUENTA SIN NEGOCIACION.")


def no_route(path: str) -> ContractError:
    return ContractError(404, "10404", "OTR", f"Recurso no existe: {path}")


def bad_method(method: str, path: str) -> ContractError:
    return ContractError(405, "10405", "OTR", f"Metodo {method} no permitido en {path}")


def too_large(limit: int) -> ContractError:
    return ContractError(413, "10413", "OTR", f"El cuerpo supera {limit} bytes")


def bad_media_type() -> ContractError:
    return ContractError(415, "10415", "OTR", "El cuerpo debe ser application/json")


def unexpected(error_id: str) -> ContractError:
    return ContractError(
        500,
        "15001",
        "OTR",
        f"Error inesperado en el procesamiento del servicio (id {error_id})",
    )


def refused(error: RecaudoError) -> ContractError:
    """A service's refusal, in the contract's shape (10001: the core refused the call)."""
    if isinstance(error, Unauthenticated):
        return unauthenticated(error.message)
    if isinstance(error, PermissionDenied):
        return ContractError(403, "10403", "SEG", f"Operacion no permitida: {error.message}")
    if isinstance(error, NotFound):
        return ContractError(404, "00502", "DBA", f"CUENTA NO EXISTE. {error.message}")
    status = 409 if isinstance(error, Conflict) else 422
    return ContractError(status, "10001", "OTR", f"Error al ejecutar el PL: {error.message}")


# --- headers ---------------------------------------------------------------------------

# Required on every contract call besides the token endpoint (document: "Required YES").
INVOKER_HEADERS = (
    "X-Invoker-Channel",
    "X-Invoker-UserIPAddress",
    "X-Invoker-ServerIPAddress",
    "X-Invoker-UserMACAddress",
)
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([-:])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")
_CHANNEL = re.compile(r"^[0-9A-Za-z]{1,10}$")


@dataclass(frozen=True, slots=True)
class Invoker:
    """Who the partner says is at the other end (kept for the audit, never trusted)."""

    channel: str
    user_ip: str
    server_ip: str
    user_mac: str


def _ip(name: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise bad_input(name, "no es una direccion IP") from None


def parse_invoker(headers: Mapping[str, str]) -> Invoker:
    values: dict[str, str] = {}
    for name in INVOKER_HEADERS:
        value = headers.get(name.lower(), "").strip()
        if not value:
            raise null_input(f"header {name}")
        values[name] = value
    channel = values["X-Invoker-Channel"]
    if not _CHANNEL.match(channel):
        raise bad_input("header X-Invoker-Channel", "de 1 a 10 letras o digitos")
    mac = values["X-Invoker-UserMACAddress"]
    if not _MAC.match(mac):
        raise bad_input("header X-Invoker-UserMACAddress", "no es una direccion MAC")
    return Invoker(
        channel,
        _ip("header X-Invoker-UserIPAddress", values["X-Invoker-UserIPAddress"]),
        _ip("header X-Invoker-ServerIPAddress", values["X-Invoker-ServerIPAddress"]),
        mac.upper().replace(":", "-"),
    )


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str
    token: str


def parse_credentials(headers: Mapping[str, str]) -> Credentials:
    client_id = headers.get("client_id", "").strip()
    client_secret = headers.get("client_secret", "").strip()
    if not client_id or not client_secret:
        raise unauthenticated("faltan los headers client_id y client_secret")
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    # The document writes "Barear"; the token endpoint answers token_type "Bearer".
    if scheme.lower() not in ("bearer", "barear") or not token.strip():
        raise unauthenticated("falta el header Authorization: Bearer <token>")
    return Credentials(client_id, client_secret, token.strip())


# --- reading JSON ----------------------------------------------------------------------


def load_json(body: bytes) -> Any:
    if not body.strip():
        raise null_input("body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_input("body", "no es JSON valido") from None


# Control characters other than tab and line breaks (a NUL is refused by PostgreSQL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Node:
    """A JSON object of the request with its path, for messages that name the field."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    @classmethod
    def root(cls, data: Any, name: str = "body") -> Node:
        if not isinstance(data, dict):
            raise bad_input(name, "debe ser un objeto JSON")
        return cls(data, "")

    def name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def obj(self, key: str, *, required: bool = False) -> Node | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise null_input(self.name(key))
            return None
        if not isinstance(value, dict):
            raise bad_input(self.name(key), "debe ser un objeto")
        return Node(value, self.name(key))

    def need(self, key: str) -> Node:
        node = self.obj(key, required=True)
        assert node is not None
        return node

    def list(self, key: str, *, required: bool = False) -> list[Node]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise null_input(self.name(key))
            return []
        if not isinstance(value, list):
            raise bad_input(self.name(key), "debe ser una lista")
        if len(value) > MAX_ITEMS:
            raise bad_input(self.name(key), f"a lo mas {MAX_ITEMS} elementos")
        nodes = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise bad_input(f"{self.name(key)}[{i}]", "debe ser un objeto")
            nodes.append(Node(item, f"{self.name(key)}[{i}]"))
        return nodes

    def text(self, key: str, *, required: bool = False, max_len: int = 100) -> str | None:
        value = self.data.get(key)
        if _absent(value):
            if required:
                raise null_input(self.name(key))
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise bad_input(self.name(key), "debe ser texto")
        text = str(value).strip()
        if len(text) > max_len:
            raise bad_input(self.name(key), f"a lo mas {max_len} caracteres")
        if _CONTROL.search(text):
            raise bad_input(self.name(key), "caracteres de control no permitidos")
        return text

    def number(self, key: str, *, required: bool = False) -> Decimal | None:
        """A JSON number (or a numeric string: partners send `"3.0"`), exact."""
        value = self.data.get(key)
        if _absent(value):
            if required:
                raise null_input(self.name(key))
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad_input(self.name(key), "debe ser numerico")
        if isinstance(value, float) and not math.isfinite(value):
            raise bad_input(self.name(key), "debe ser un numero finito")
        try:
            # str() of a float is its shortest exact representation (0.1 -> "0.1").
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise bad_input(self.name(key), "debe ser numerico") from None
        if not number.is_finite() or abs(number.adjusted()) > MAX_CENTS_DIGITS:
            raise bad_input(self.name(key), "fuera de rango")
        return number

    def whole(
        self, key: str, *, required: bool = False, low: int = 0, high: int = 999
    ) -> int | None:
        number = self.number(key, required=required)
        if number is None:
            return None
        if number != number.to_integral_value():
            raise bad_input(self.name(key), "debe ser un numero entero")
        result = int(number)
        if not low <= result <= high:
            raise bad_input(self.name(key), f"debe estar entre {low} y {high}")
        return result

    def cents(self, key: str, *, required: bool = False) -> int | None:
        """An amount: an integer whose two last digits are the decimals (1244 = 12.44)."""
        number = self.number(key, required=required)
        if number is None:
            return None
        if number != number.to_integral_value():
            raise bad_input(
                self.name(key), "monto sin separador decimal: los dos ultimos digitos son decimales"
            )
        if number < 0:
            raise bad_input(self.name(key), "el monto no puede ser negativo")
        if len(str(int(number))) > MAX_CENTS_DIGITS:
            raise bad_input(self.name(key), "monto fuera de rango")
        return int(number)

    def percent(self, key: str, *, required: bool = False) -> Decimal | None:
        number = self.number(key, required=required)
        if number is None:
            return None
        if not 0 <= number <= 100:
            raise bad_input(self.name(key), "porcentaje entre 0 y 100")
        return number

    def day(self, key: str, *, required: bool = False) -> date | None:
        """A date as `YYYY-MM-DD` (the examples) or `yyyymmdd` (the field tables)."""
        value = self.text(key, required=required, max_len=10)
        if value is None:
            return None
        try:
            if re.fullmatch(r"\d{8}", value):
                return date(int(value[:4]), int(value[4:6]), int(value[6:]))
            return date.fromisoformat(value)
        except ValueError:
            raise bad_input(self.name(key), "fecha invalida (YYYY-MM-DD)") from None

    def flag(self, key: str) -> bool | None:
        """A boolean; the document also sends "true"/"false" and "Si"/"No" as text."""
        value = self.data.get(key)
        if _absent(value):
            return None
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "si", "sí"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no"):
            return False
        raise bad_input(self.name(key), "debe ser true o false")

    def account(self, key: str, *, required: bool = False) -> str | None:
        """An obligation number, right-padded with spaces to 20 characters (or not)."""
        value = self.data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if _absent(value):
            if required:
                raise null_input(self.name(key))
            return None
        if not isinstance(value, str):
            raise bad_input(self.name(key), "debe ser texto")
        if len(value) > ACCOUNT_WIDTH and len(value.rstrip(" ")) <= ACCOUNT_WIDTH:
            raise bad_input(self.name(key), f"relleno a mas de {ACCOUNT_WIDTH} caracteres")
        account = value.rstrip(" ")
        if len(account) > ACCOUNT_WIDTH or account != account.strip() or not account.isprintable():
            raise bad_input(self.name(key), f"a lo mas {ACCOUNT_WIDTH} caracteres sin espacios")
        return account


# --- amounts ---------------------------------------------------------------------------


def money_of(cents: int, currency: str, name: str) -> Money:
    """Two-implied-decimals integer → Money in `currency`, exactly or not at all."""
    exp = money.exponent(currency)
    if exp >= 2:
        minor = cents * int(10 ** (exp - 2))
    else:
        factor = int(10 ** (2 - exp))
        if cents % factor:
            raise bad_input(name, f"{currency} no admite decimales: el monto debe terminar en 00")
        minor = cents // factor
    if minor > money.MAX_MINOR:
        raise bad_input(name, "monto fuera de rango")
    return Money(minor, currency)


def cents_of(amount: Money) -> int:
    """Money → the contract's integer with two implied decimals, exactly."""
    exp = money.exponent(amount.currency)
    if exp <= 2:
        return amount.minor * int(10 ** (2 - exp))
    factor = int(10 ** (exp - 2))
    if amount.minor % factor:
        raise bad_input("amt", f"{amount} no se expresa con dos decimales")
    return amount.minor // factor


# --- identification --------------------------------------------------------------------

# Contract id types → Recaudo's; the others (CE, NE, TI, OT) are matched by number only.
ID_TYPES: Mapping[str, IdType] = {"CC": IdType.CC, "NI": IdType.NIT}
CONTRACT_ID_TYPES: Mapping[str, str] = {"CC": "CC", "NIT": "NI", "RUT": "OT", "NIF": "OT"}
KNOWN_ID_TYPES = frozenset({"CC", "NI", "CE", "NE", "TI", "OT"})


@dataclass(frozen=True, slots=True)
class PartyId:
    id_type: str  # the contract's code, upper case
    number: str  # digits and letters only, upper case

    def matches(self, id_type: str, national_id: str) -> bool:
        expected = ID_TYPES.get(self.id_type)
        if expected is not None and id_type in ID_TYPES.values() and id_type != expected:
            return False
        return self.number == normalized_number(national_id)


def normalized_number(value: str) -> str:
    return "".join(ch for ch in value.upper() if ch.isalnum())


def parse_party(node: Node | None, name: str, *, required: bool) -> PartyId | None:
    if node is None:
        if required:
            raise null_input(name)
        return None
    id_type = node.text("govIssueIdentType", required=required, max_len=4)
    number = node.text("identSerialNum", required=required, max_len=30)
    if id_type is None or number is None:
        if id_type is None and number is None and not required:
            return None
        raise null_input(node.name("identSerialNum" if number is None else "govIssueIdentType"))
    id_type = id_type.upper()
    if id_type not in KNOWN_ID_TYPES:
        raise bad_input(node.name("govIssueIdentType"), "tipo no valido (CC, NI, CE, NE, TI, OT)")
    digits = normalized_number(number)
    if not digits:
        raise bad_input(node.name("identSerialNum"), "numero de identificacion vacio")
    return PartyId(id_type, digits)


def contract_id_type(id_type: str) -> str:
    return CONTRACT_ID_TYPES.get(id_type, "OT")


# --- token endpoint --------------------------------------------------------------------


def token_answer(access_token: str, expires_in: int) -> dict[str, Any]:
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}


# --- profile (listValidation) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileItem:
    """One `listValidation[]` entry in Recaudo's names (amounts in cents)."""

    request_id: str
    party: PartyId
    account: str | None
    data_processing_consent: bool | None
    income: int
    other_income: int
    expenses: int
    self_employed: bool
    sales: int | None
    operating_costs: int | None
    cash_today: int | None
    suggested_installment: int | None
    details: dict[str, Any]


def _profile_details(item: Node) -> dict[str, Any]:
    """What the customer declared besides money: kept with the profile, Recaudo-named."""
    details: dict[str, Any] = {}
    person = item.obj("naturalPerson")
    if person is not None:
        name = person.obj("personName")
        details["age"] = person.whole("age", high=150)
        details["city"] = person.text("city")
        marital = person.obj("maritalStatusInfo")
        details["marital_status"] = marital.text("maritalStatus") if marital else None
        education = person.obj("semiPrivatePersonInfo")
        details["education_level"] = education.text("educationLevel") if education else None
        details["rank"] = person.text("govRank")
        details["has_last_name"] = bool(name and name.text("lastName"))
        occupations = person.list("businessOccupation") or person.list("businessOcucupation")
        details["occupations"] = [
            {"job": o.text("job"), "kind": o.text("type")} for o in occupations
        ]
    business = item.obj("businessInfo")
    if business is not None:
        details["contract_type"] = business.text("labourContractType")
        details["sector"] = business.text("labourSector")
        details["years_in_activity"] = business.whole("jobYears", high=100)
    for key, target in (
        ("businessProfessionGeneral", "activity"),
        ("businessProfessionSpecific", "specific_activity"),
    ):
        node = item.obj(key)
        if node is not None:
            details[target] = node.text("desc", max_len=200)
    collection = item.obj("collection")
    if collection is not None:
        details["can_pay_installments"] = collection.flag("flagSelected")
        aging = collection.obj("delinqAging")
        if aging is not None:
            details["overcame_hardship"] = aging.flag("flagPreventPayment")
            details["reason_for_default"] = aging.text("reason", max_len=500)
    info = item.obj("personInfo")
    if info is not None:
        details["role"] = info.text("role")
        income = info.obj("incomeInfo")
        details["declares_income"] = income.flag("flagContributor") if income else None
    offer = item.obj("offer")
    if offer is not None:
        details["process_stage"] = offer.text("processStage")
        details["moment"] = offer.text("indMoment")
        details["product_line"] = offer.text("executionLine")
    transaction = item.obj("transaccion")
    if transaction is not None:
        details["operation_type"] = transaction.text("operationType")
    return {k: v for k, v in details.items() if v is not None}


def _amount_at(node: Node | None, key: str) -> int | None:
    if node is None:
        return None
    inner = node.obj(key)
    return inner.cents("amt") if inner is not None else None


def parse_profile(data: Any) -> list[ProfileItem]:
    root = Node.root(data)
    items = root.list("listValidation", required=True)
    if not items:
        raise null_input("listValidation")
    out: list[ProfileItem] = []
    for item in items:
        transaction = item.need("transaccion")
        request_id = transaction.text("trnRqUID", required=True, max_len=100)
        assert request_id is not None
        party = parse_party(item.obj("govIssueIdent"), item.name("govIssueIdent"), required=True)
        assert party is not None
        acct = item.obj("partyAcctRelRec")
        account = acct.account("acctId") if acct is not None else None
        compliance = item.obj("compliance")
        consent = compliance.flag("personDataProcessing") if compliance is not None else None
        info = item.obj("personInfo")
        income_info = info.obj("incomeInfo") if info is not None else None
        income = income_info.cents("incomeAmt") if income_info is not None else None
        # The field table puts sales and costs under businessPerson (self-employed or a
        # company); the document's example has them under personInfo, where they are only
        # kept as declared.
        business = item.obj("businessPerson")
        sales = _amount_at(business, "financialAssets")
        costs = _amount_at(business, "expenses")
        self_employed = sales is not None or costs is not None
        collection = item.obj("collection")
        aging = collection.obj("delinqAging") if collection is not None else None
        details = _profile_details(item)
        if not self_employed and info is not None:
            for key, target in (("financialAssets", "sales"), ("expenses", "operating_costs")):
                value = _amount_at(info, key)
                if value is not None:
                    details[f"declared_{target}_cents"] = value
        out.append(
            ProfileItem(
                request_id=request_id,
                party=party,
                account=account,
                data_processing_consent=consent,
                income=income or 0,
                other_income=_amount_at(info, "otherIncome") or 0,
                expenses=_amount_at(info, "financialLiabilities") or 0,
                self_employed=self_employed,
                sales=(sales or 0) if self_employed else None,
                operating_costs=(costs or 0) if self_employed else None,
                cash_today=aging.cents("amt") if aging is not None else None,
                suggested_installment=(
                    collection.cents("suggestedPmtAmt") if collection is not None else None
                ),
                details=details,
            )
        )
    return out


def profile_command(item: ProfileItem, customer_id: int, currency: str, name: str) -> NewProfile:
    """A `listValidation[]` entry as the profile the negotiation services record."""

    def units(cents: int | None, field_name: str) -> Decimal | None:
        if cents is None:
            return None
        return money_of(cents, currency, f"{name}.{field_name}").amount

    income = units(item.income, "personInfo.incomeInfo.incomeAmt")
    other = units(item.other_income, "personInfo.otherIncome.amt")
    expenses = units(item.expenses, "personInfo.financialLiabilities.amt")
    assert income is not None and other is not None and expenses is not None
    details = dict(item.details)
    details["request_id"] = item.request_id
    if item.suggested_installment is not None:
        amount = units(item.suggested_installment, "collection.suggestedPmtAmt")
        details["suggested_installment"] = str(amount)
    return NewProfile(
        customer_id=customer_id,
        income=income,
        other_income=other,
        personal_expenses=expenses,
        self_employed=item.self_employed,
        sales=units(item.sales, "businessPerson.financialAssets.amt"),
        operating_costs=units(item.operating_costs, "businessPerson.expenses.amt"),
        cash_today=units(item.cash_today, "collection.delinqAging.amt"),
        details=details,
        source=CHANNEL,
    )


PROFILE_ACTION = "Calculo PERFILAMIENTO"


def profile_answer(items: Sequence[ProfileItem]) -> dict[str, Any]:
    return {
        "listValidation": [
            {
                "transaccion": {"action": PROFILE_ACTION, "trnRqUID": item.request_id},
                "partyAcctRelRec": {"acctId": item.account or ""},
                "govIssueIdent": {
                    "govIssueIdentType": item.party.id_type,
                    "identSerialNum": item.party.number,
                },
            }
            for item in items
        ],
        "responseType": {"value": "OK"},
    }


# --- strategies and concepts -----------------------------------------------------------

# The document's examples also write CNT, PDD and PPP (policies) and REDIFERIDO (OTC).
STRATEGY_ALIASES: Mapping[str, Strategy] = {
    "CNT": Strategy.CNTL,
    "PDD": Strategy.PDDA,
    "PPP": Strategy.PPPL,
    "REDIFERIDO": Strategy.REDIF,
}


def parse_strategy_code(node: Node, key: str, *, required: bool) -> Strategy | None:
    text = node.text(key, required=required, max_len=12)
    if text is None:
        return None
    code = text.upper()
    if code in STRATEGY_ALIASES:
        return STRATEGY_ALIASES[code]
    try:
        return Strategy(code)
    except ValueError:
        names = ", ".join(s.value for s in Strategy)
        raise bad_input(node.name(key), f"herramienta desconocida (una de {names})") from None


# `intRateInfo.curAmt[].desc` (policies) → Recaudo concept.
CONCEPT_OF_NAME: Mapping[str, Concept] = {
    "CAPITAL": Concept.CAPITAL,
    "INTERESES_CORRIENTES": Concept.CURRENT_INTEREST,
    "INTERES_CORTE": Concept.CURRENT_INTEREST,
    "INTERES_ANTICIPADOS": Concept.CURRENT_INTEREST,
    "INTERESES_MORA": Concept.LATE_INTEREST,
    "INTERES_MORA": Concept.LATE_INTEREST,
    "SEGUROS": Concept.INSURANCE,
    "GAC": Concept.FEES,
    "COMISION_BANCOLDEX": Concept.FEES,
    "COMISION_FINAGRO": Concept.FEES,
    "COMISION_FNG": Concept.FEES,
    "COMISION_MIPYME": Concept.FEES,
    "COMISION_USAID": Concept.FEES,
    "CARGOS_CE07": Concept.OTHER_CHARGES,
    "CARGOS_CE014": Concept.OTHER_CHARGES,
    "CARGOS_CE022": Concept.OTHER_CHARGES,
    "CARGOS_CE016": Concept.OTHER_CHARGES,
    "CARGOS_CPA": Concept.OTHER_CHARGES,
    "CARGOS_SIP": Concept.OTHER_CHARGES,
}
# Recaudo concept → the name it is answered under.
NAME_OF_CONCEPT: Mapping[Concept, str] = {
    Concept.CAPITAL: "CAPITAL",
    Concept.CURRENT_INTEREST: "INTERESES_CORRIENTES",
    Concept.LATE_INTEREST: "INTERESES_MORA",
    Concept.INSURANCE: "SEGUROS",
    Concept.FEES: "GAC",
    Concept.OTHER_CHARGES: "CARGOS_CPA",
}
# Condonation percentages of the negotiation payloads (`intRateInfo.additionalData[]`).
CONDONATION_NAMES: Mapping[str, Concept] = {
    # BM & SLP pre-approved (PPPS)
    "PORCONDONAINTCTE": Concept.CURRENT_INTEREST,
    "PORCONDONAINTMORA": Concept.LATE_INTEREST,
    "PORCONDONACARGOS": Concept.OTHER_CHARGES,
    "PORCONDONACONTIN": Concept.CURRENT_INTEREST,
    "PORCONDONAGAC": Concept.FEES,
    "PORCONDONOTRCRGOS": Concept.OTHER_CHARGES,
    "PORCONDONCOMOP": Concept.FEES,
    "PORCONDONSEGVID": Concept.INSURANCE,
    "PORCONDONSEGIRT": Concept.INSURANCE,
    # OpenCard pre-approved (PRERM)
    "% A CONDONAR POR CAPITAL": Concept.CAPITAL,
    "% A CONDONAR POR INTERES CORRIENTE": Concept.CURRENT_INTEREST,
    "% A CONDONAR POR INTERES DE DE MORA": Concept.LATE_INTEREST,
    "% A CONDONAR POR INTERESES EXTRACONTABLES O CONTINGENTES": Concept.CURRENT_INTEREST,
    "% A CONDONAR POR OTROS CONCEPTOS": Concept.OTHER_CHARGES,
}


def _merge_percent(
    result: dict[Concept, Decimal], concept: Concept, value: Decimal, name: str
) -> None:
    """Several contract names fall on one Recaudo concept: they must agree."""
    known = result.get(concept)
    if known is not None and known != value:
        raise bad_input(
            name, f"porcentajes distintos ({known} y {value}) para el concepto {concept.value}"
        )
    result[concept] = value


def parse_condonation_list(items: Sequence[Node]) -> dict[Concept, Decimal]:
    result: dict[Concept, Decimal] = {}
    for item in items:
        name = item.text("name", required=True, max_len=80)
        assert name is not None
        concept = CONDONATION_NAMES.get(" ".join(name.upper().split()))
        if concept is None:
            raise bad_input(item.name("name"), f"porcentaje desconocido {name!r}")
        value = item.percent("value", required=True)
        assert value is not None
        _merge_percent(result, concept, value, item.name("value"))
    return result


# --- policies (creditAnalysis) ---------------------------------------------------------

FLAG_FIELDS = (
    "FLAG_VALOR_PAGO",
    "FLAG_VALOR_NUEVA_CUOTA",
    "FLAG_NUEVO_PLAZO",
    "FLAG_PERIODO_GRACIA",
    "FLAG_NUEVA_TASA",
    "FLAG_SALDO_CONSOLIDADO",
    "FLAG_PLAZO_NEGOCIACION",
)


@dataclass(frozen=True, slots=True)
class Overrides:
    """What the partner changed in a recalculation (None: keep the policy's value)."""

    payment_today: int | None = None  # cents
    installment: int | None = None  # cents: the new installment the customer asks for
    term: int | None = None
    grace_months: int | None = None
    annual_rate: Decimal | None = None
    condonation: Mapping[Concept, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AnalysisItem:
    """One `creditAnalysis[]` entry in Recaudo's names."""

    request_id: str
    party: PartyId
    account: str | None
    recalculate: bool
    strategy: Strategy | None
    strategy_code: str | None  # as the partner wrote it, echoed back
    overrides: Overrides


def _flags(collection: Node) -> dict[str, bool]:
    items = collection.list("additionalData") or collection.list("AdditionalData")
    flags: dict[str, bool] = {}
    for item in items:
        name = item.text("name", max_len=40)
        if name is None:
            continue
        # The document's examples write " FLAG_NUEVA_TASA" with a leading space.
        key = name.strip().upper()
        if key not in FLAG_FIELDS:
            raise bad_input(item.name("name"), f"nombre desconocido {name!r}")
        value = item.text("value", max_len=10)
        flags[key] = value is not None and value.strip() in ("1", "1.0", "true", "S", "SI")
    return flags


def _given(flags: Mapping[str, bool], flag: str, value: Any) -> bool:
    """A field overrides when its flag says so; without any flag, when it is non-zero."""
    if flags:
        return flags.get(flag, False) and value is not None
    return value is not None and value != 0


def parse_analysis(data: Any) -> list[AnalysisItem]:
    root = Node.root(data)
    items = root.list("creditAnalysis", required=True)
    if not items:
        raise null_input("creditAnalysis")
    out: list[AnalysisItem] = []
    for item in items:
        collection = item.need("collection")
        transaction = collection.need("transaction")
        request_id = transaction.text("trnRqUID", required=True, max_len=100)
        assert request_id is not None
        party = parse_party(
            collection.obj("govIssueIdent"), collection.name("govIssueIdent"), required=True
        )
        assert party is not None
        acct = collection.obj("partyAcctRelRec")
        account = acct.account("acctId") if acct is not None else None
        status = collection.obj("pmtStatus")
        recalculate = bool(status.flag("flagRecalculate")) if status is not None else False
        code = collection.text("strategyType", max_len=12)
        strategy = parse_strategy_code(collection, "strategyType", required=recalculate)
        overrides = Overrides()
        if recalculate:
            if account is None:
                raise null_input(collection.name("partyAcctRelRec.acctId"))
            flags = _flags(collection)
            debt = collection.obj("indebtedness")
            cur = collection.obj("curAmt")
            payment = acct.cents("amt") if acct is not None else None
            installment = cur.cents("amt") if cur is not None else None
            term = debt.whole("numAsignInstallments", high=999) if debt else None
            grace = debt.whole("periodGrace", high=999) if debt else None
            rate = debt.percent("rate") if debt else None
            condonation: dict[Concept, Decimal] = {}
            rates = collection.obj("intRateInfo")
            for entry in rates.list("curAmt") if rates is not None else []:
                desc = entry.text("desc", required=True, max_len=40)
                assert desc is not None
                concept = CONCEPT_OF_NAME.get(desc.upper())
                if concept is None:
                    raise bad_input(entry.name("desc"), f"concepto desconocido {desc!r}")
                pct = entry.percent("rate")
                if pct is not None:
                    _merge_percent(condonation, concept, pct, entry.name("rate"))
            overrides = Overrides(
                payment_today=payment if _given(flags, "FLAG_VALOR_PAGO", payment) else None,
                installment=(
                    installment if _given(flags, "FLAG_VALOR_NUEVA_CUOTA", installment) else None
                ),
                term=term if _given(flags, "FLAG_NUEVO_PLAZO", term) else None,
                grace_months=grace if _given(flags, "FLAG_PERIODO_GRACIA", grace) else None,
                annual_rate=rate if _given(flags, "FLAG_NUEVA_TASA", rate) else None,
                # Percentages count when one of them is set: all zero is "not given".
                condonation=condonation if any(condonation.values()) else {},
            )
        out.append(AnalysisItem(request_id, party, account, recalculate, strategy, code, overrides))
    return out


def cents_of_units(amount: Decimal | None) -> int:
    """A service amount in currency units (Decimal) → integer with two implied decimals."""
    if amount is None:
        return 0
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise bad_input("amt", f"{amount} no se expresa con dos decimales")
    return int(cents)


def _rate(value: Decimal | None) -> float:
    return float(value) if value is not None else 0.0


# The document's fixed lists: every answer carries all of their names.
EXCEPTION_NAMES = (
    "EXC_CUOTAS_PAGAS_APLICADAS",
    "EXC_DIAS_MORA",
    "EXC_FECHA_EXPEDICION",
    "EXC_CUOTAS_PAGAS",
    "EXC_NUMERO_HERRAMIENTAS",
    "EXC_PLAZO_NEGOCIACION",
    "EXC_PERIODO_VIGILANCIA_INCUMPLIDA",
    "EXC_PERIODO_VIGILANCIA",
    "EXC_CARGO_DIFERIDO",
    "EXC_TIEMPO_ENTRE_HERR",
)
NO_VIABILITY_SLOTS = (
    "causalDeNoViabilidadHerremienta1",
    "causalDeNoViabilidadPuestaAlDia2",
    "causalDeNoViabilidadPuestaAlDia3",
    "causalDeNoViabilidadPuestaAlDia4",
    "causalDeNoViabilidadPuestaAlDia5",
    "causalDeNoViabilidadPuestaAlDia6",
    "causalDeNoViabilidadPuestaAlDia7",
)


def _causes(offer: OfferView) -> list[dict[str, str]]:
    """The document allows only its seven cause names: they are slots, filled in order
    with `cause: message` (a seventh slot holds the rest, joined by ` | `)."""
    texts = [f"{c.cause}: {c.message}" for c in offer.causes]
    slots = len(NO_VIABILITY_SLOTS)
    if len(texts) > slots:
        texts = [*texts[: slots - 1], " | ".join(texts[slots - 1 :])]
    texts += [""] * (slots - len(texts))
    return [
        {"descriptionDesc": name, "viabilityResult": text}
        for name, text in zip(NO_VIABILITY_SLOTS, texts, strict=True)
    ]


def _exceptions(offer: OfferView, names: Mapping[int, str]) -> list[dict[str, str]]:
    used = [names.get(i, "") for i in offer.exceptions]
    return [{"name": name, "value": str(used.count(name))} for name in EXCEPTION_NAMES]


def _percentages(parameters: Mapping[str, Any]) -> dict[Concept, Decimal]:
    raw = parameters.get("condonation") or {}
    result: dict[Concept, Decimal] = {}
    for key, value in raw.items():
        try:
            result[Concept(key)] = Decimal(str(value))
        except (ValueError, InvalidOperation):
            continue
    return result


def _credit_entry(
    item: AnalysisItem,
    as_of: date,
    ob: ObligationOffers,
    offer: OfferView,
    viable_count: int,
    level: int,
    exception_names: Mapping[int, str],
) -> dict[str, Any]:
    terms = offer.terms
    parts = {Concept(k): v for k, v in ob.components.items()}
    pct = _percentages(offer.parameters)
    installments = terms.installments if terms is not None else ()
    interest = parts.get(Concept.CURRENT_INTEREST, Decimal(0)) + parts.get(
        Concept.LATE_INTEREST, Decimal(0)
    )
    code = item.strategy_code if item.recalculate and item.strategy_code else offer.strategy
    overdue = ob.days_past_due > 0
    return {
        "collection": {
            "transaction": {"trnRqUID": item.request_id},
            "strategyType": str(code).upper(),
            "govIssueIdent": {
                "govIssueIdentType": item.party.id_type,
                "identSerialNum": item.party.number,
            },
            "curAmt": {"amt": cents_of_units(terms.new_installment if terms else None)},
            "partyAcctRelRec": {
                "acctId": ob.debt,
                "amt": cents_of_units(terms.payment_today if terms else None),
                "bankAcctStatusCode": "VENCIDO" if overdue else "VIGENTE",
                "flagSelectedOffered": "FDTM" if overdue else "FDTA",
                "additionalAccountId": "",
                "additionalAcctId": ",".join(terms.debts + terms.kept_debts) if terms else ob.debt,
            },
            "pmtStatus": {"flagRecalculate": item.recalculate},
            "delinqAging": {"daysCount": ob.days_past_due},
            "extendedDiscount": {"flagFindeter": "", "flagWalletFindeter": ""},
            "extAcctBal": {
                "amt": 0,
                "curAmt": {"amt": cents_of_units(parts.get(Concept.OTHER_CHARGES))},
            },
            "acctBal": {"amt": cents_of_units(parts.get(Concept.CAPITAL))},
            "fee": {"amt": cents_of_units(parts.get(Concept.FEES)), "curAmt": []},
            "extraordinaryFee": [],
            "collateralDesc": "FRANCES" if installments else "",
            "collateral": {"code": ""},
            "capitalizationAcctId": {"code": ""},
            "dueDt": ob.due_date.isoformat(),
            "insuranceInfo": [
                {
                    "policyName": "SEGURO_VIDA_CTA_COBRO",
                    "amt": cents_of_units(parts.get(Concept.INSURANCE)),
                }
            ],
            "intRateInfo": {
                "amt": cents_of_units(interest),
                "curAmt": [
                    {
                        "desc": NAME_OF_CONCEPT[concept],
                        "rate": _rate(pct.get(concept, Decimal(0))),
                        "amt": cents_of_units(parts.get(concept, Decimal(0))),
                    }
                    for concept in Concept
                ],
                "rate": _rate(terms.annual_rate if terms else None),
            },
            "indebtedness": {
                "establishDt": as_of.isoformat(),
                "numberOfInstallments": len(installments),
                "amt": cents_of_units(terms.new_installment if terms else None),
                "totalPmtCount": len(installments),
                "rate": _rate(terms.annual_rate if terms else None),
                "periodGrace": terms.grace_months if terms else 0,
                "numAsignInstallments": terms.term if terms else 0,
                "term": terms.term if terms else 0,
            },
            "validity": {
                "startDt": as_of.isoformat(),
                "openDt": installments[0].due_date.isoformat() if installments else "",
                "endDt": installments[-1].due_date.isoformat() if installments else "",
            },
            "offer": {
                "flagViability": "true" if offer.viable else "false",
                "viabilityLevel": str(level),
                "count": str(viable_count),
                "amt": _rate(terms.annual_rate if terms else None),
            },
            "discount": {"amt": cents_of_units(terms.total_condoned if terms else None)},
            "causalExceptionInfo": _exceptions(offer, exception_names),
            "causalNoViabilitynInfo": _causes(offer),
            "additionalData": [{"name": k, "value": v} for k, v in _answer_flags(item).items()],
        }
    }


def analysis_answer(
    entries: Sequence[tuple[AnalysisItem, Simulation]],
    exception_names: Mapping[int, str],
) -> dict[str, Any]:
    """One `creditAnalysis[]` entry per obligation and strategy. `offer.count` is the
    number of viable strategies of the obligation, `viabilityLevel` the rank of a viable
    one among them (1 = first) and 0 for the others."""
    out: list[dict[str, Any]] = []
    for item, simulation in entries:
        for ob in simulation.obligations:
            viable = [o.strategy for o in ob.offers if o.viable]
            for offer in ob.offers:
                level = viable.index(offer.strategy) + 1 if offer.viable else 0
                out.append(
                    _credit_entry(
                        item, simulation.as_of, ob, offer, len(viable), level, exception_names
                    )
                )
    return {"responseType": {"value": "OK"}, "creditAnalysis": out}


def _answer_flags(item: AnalysisItem) -> dict[str, str]:
    o = item.overrides
    given = {
        "FLAG_VALOR_PAGO": o.payment_today is not None,
        "FLAG_VALOR_NUEVA_CUOTA": o.installment is not None,
        "FLAG_NUEVO_PLAZO": o.term is not None,
        "FLAG_PERIODO_GRACIA": o.grace_months is not None,
        "FLAG_NUEVA_TASA": o.annual_rate is not None,
        "FLAG_SALDO_CONSOLIDADO": False,
        "FLAG_PLAZO_NEGOCIACION": False,
    }
    return {name: "1" if given[name] else "0" for name in FLAG_FIELDS}


def analysis_parameters(
    item: AnalysisItem, currency: str, term: int | None = None
) -> dict[str, Any]:
    """A recalculation's overrides as strategy parameters (Recaudo's JSON names)."""
    o = item.overrides
    params: dict[str, Any] = {}
    chosen = term if term is not None else o.term
    if chosen is not None:
        params["term"] = chosen
    if o.grace_months is not None:
        params["grace_months"] = o.grace_months
    if o.annual_rate is not None:
        params["annual_rate"] = str(o.annual_rate)
    if o.payment_today is not None and item.strategy not in (Strategy.CNTL, Strategy.PDIA):
        down = money_of(o.payment_today, currency, "creditAnalysis.collection.partyAcctRelRec.amt")
        params["down_payment"] = str(down.amount)
    if o.condonation:
        params["condonation"] = {c.value: str(p) for c, p in o.condonation.items()}
    return params


# --- negotiations ----------------------------------------------------------------------

# Every origin may register every strategy: the document's "Nuevas Herramientas
# (Default)" section lets BM, SLP, OTC and OCR send any tool the core knows.
CLIENT_APPS = ("BM", "SLP", "OTC", "OCR")
MODIFICATION_TYPES = frozenset({"R26", "MOD", "M01", "RDO", "SRO"})


@dataclass(frozen=True, slots=True)
class NegotiationRecord:
    """A `POST /v1/negotiations` body in Recaudo's names (amounts in cents)."""

    app: str
    strategy: Strategy
    account: str
    commitment: int | None  # cents
    commitment_rate: Decimal
    kind: str  # "P" or "T"
    mark_start: date | None
    mark_end: date | None
    adviser: str | None
    office: str | None
    term: int | None
    grace_months: int | None
    dead_months: int | None
    restructurings: int | None
    deferral_term: int | None
    party: PartyId | None
    annual_rate: Decimal | None
    condonation: Mapping[Concept, Decimal]
    core_strategy_id: str | None
    causal_code: str | None
    modification_type: str | None
    request_id: str | None  # offer.trnRqUID (credit negotiation request)
    request_number: str | None  # offer.requestNumber (ADMINFO)
    effective_on: date | None
    process_date: date | None
    credit_limit: int | None  # cents: quotaInfo.amt

    def extras(self) -> dict[str, Any]:
        """The contract's bookkeeping fields, Recaudo-named, kept with the record."""
        values: dict[str, Any] = {
            "app": self.app,
            "core_strategy_id": self.core_strategy_id,
            "causal_code": self.causal_code,
            "modification_type": self.modification_type,
            "request_id": self.request_id,
            "request_number": self.request_number,
            "restructurings": self.restructurings,
            "deferral_term": self.deferral_term,
            "effective_on": self.effective_on.isoformat() if self.effective_on else None,
            "process_date": self.process_date.isoformat() if self.process_date else None,
            "credit_limit_cents": self.credit_limit,
            "commitment_rate": str(self.commitment_rate),
        }
        return {k: v for k, v in values.items() if v is not None}


def parse_negotiation(data: Any) -> NegotiationRecord:
    root = Node.root(data)
    app_node = root.need("clientApp")
    app = app_node.text("name", required=True, max_len=40)
    assert app is not None
    app = app.upper()
    if app not in CLIENT_APPS:
        raise bad_input("clientApp.name", "origen desconocido (BM, SLP, OTC u OCR)")
    c = root.need("collection")
    strategy = parse_strategy_code(c, "strategyType", required=True)
    assert strategy is not None
    acct = c.need("partyAcctRelRec")
    account = acct.account("acctId", required=True)
    assert account is not None
    kind = (c.text("partialPmt", max_len=1) or "T").upper()
    if kind not in ("P", "T"):
        raise bad_input("collection.partialPmt", '"T" (total) o "P" (parcial)')
    rate = acct.percent("rate")
    office_node = c.obj("submitOffice")
    adviser_node = c.obj("adviser")
    debt = c.obj("indebtedness")
    offer = c.obj("offer")
    rates = c.obj("intRateInfo")
    quota = c.obj("quotaInfo")
    modification = c.text("type", max_len=5)
    if modification is not None and modification.upper() not in MODIFICATION_TYPES:
        raise bad_input("collection.type", "R26, MOD, M01, RDO o SRO")
    party = parse_party(
        c.obj("govIssueIdent") or c.obj("GovIssueIdent"), "collection.govIssueIdent", required=False
    )
    if strategy in (Strategy.PPPS, Strategy.PRERM) and party is None:
        raise null_input("collection.govIssueIdent")
    condonation = parse_condonation_list(rates.list("additionalData")) if rates else {}
    term = c.whole("numAsignInstallments", high=999)
    grace = c.whole("periodGrace", high=999)
    dead = None
    if offer is not None:
        # OpenCard pre-approved: grace months and "dead" months (no payment, interest
        # capitalised) come inside the offer.
        grace = offer.whole("periodGrace", high=999) if grace is None else grace
        dead = offer.whole("periodGraceDeath", high=999)
    start = c.day("startDt")
    end = c.day("endDt")
    if start is not None and end is not None and end < start:
        raise bad_input("collection.endDt", "la marca termina antes de empezar")
    return NegotiationRecord(
        app=app,
        strategy=strategy,
        account=account,
        commitment=acct.cents("amt"),
        commitment_rate=rate if rate is not None else Decimal(100),
        kind=kind,
        mark_start=start,
        mark_end=end,
        adviser=adviser_node.text("adviserId") if adviser_node else None,
        office=office_node.text("branchId", max_len=20) if office_node else None,
        term=term,
        grace_months=grace,
        dead_months=dead,
        restructurings=debt.whole("rate", high=99) if debt else None,
        deferral_term=debt.whole("numAsignInstallments", high=999) if debt else None,
        party=party,
        annual_rate=rates.percent("rate") if rates else None,
        condonation=condonation,
        core_strategy_id=c.text("strategyId", max_len=4),
        causal_code=c.text("causalCode", max_len=6),
        modification_type=modification.upper() if modification else None,
        request_id=offer.text("trnRqUID") if offer else None,
        request_number=offer.text("requestNumber") if offer else None,
        effective_on=offer.day("effDt") if offer else None,
        process_date=c.day("processDate"),
        credit_limit=quota.cents("amt") if quota else None,
    )


def negotiation_parameters(record: NegotiationRecord) -> dict[str, Any]:
    """The record's values a strategy uses, as strategy parameters (Recaudo's names); the
    company's policy gives the rest. `indebtedness.numAsignInstallments` is the deferral
    term of PDDA; for the other strategies `numAsignInstallments` is the new term."""
    s = record.strategy
    params: dict[str, Any] = {}
    term = record.deferral_term if s is Strategy.PDDA else None
    term = term if term is not None else record.term
    if s not in (Strategy.CNTL, Strategy.PDIA) and term is not None:
        params["term"] = term
    planned = (Strategy.PPPL, Strategy.PPPA, Strategy.PPPS, Strategy.PRERM)
    if s in planned and record.grace_months is not None:
        params["grace_months"] = record.grace_months
    if s in (Strategy.PPPS, Strategy.PRERM) and record.dead_months is not None:
        params["dead_months"] = record.dead_months
    if record.annual_rate is not None and s not in (Strategy.CNTL, Strategy.PDIA):
        params["annual_rate"] = str(record.annual_rate)
    if record.condonation:
        params["condonation"] = {c.value: str(p) for c, p in record.condonation.items()}
    return params


STATE_RECEIVED = "Received"
STATE_REJECTED = "Rejected"


def negotiation_answer(account: str, state: str, created: date, desc: str) -> dict[str, Any]:
    return {
        "collection": {
            "partyAcctRelRec": {"acctId": account},
            "state": state,
            "createdDt": created.isoformat(),
            "desc": desc,
        }
    }


# --- agreement ICS (a negotiation's details) ------------------------------------------


def parse_ics_query(params: Mapping[str, str]) -> tuple[str, PartyId | None]:
    """`GET /v1/agreement/ics?acctId=...` (`loanInfoCommon.acctId` of the document), with
    the customer's `identSerialNum` and `govIssueIdentType` optionally checked too."""
    node = Node(dict(params), "")
    account = node.account("acctId", required=True)
    assert account is not None
    party = None
    if params.get("identSerialNum") or params.get("govIssueIdentType"):
        party = parse_party(node, "query", required=True)
    return account, party


STATE_NAMES: Mapping[str, str] = {
    "proposed": "PROPUESTA",
    "accepted": "ACEPTADA",
    "active": "VIGENTE",
    "fulfilled": "CUMPLIDA",
    "broken": "INCUMPLIDA",
}


def ics_answer(
    view: NegotiationView,
    account: str,
    product: str,
    id_type: str,
    national_id: str,
    phone: str,
    company_name: str,
    channel: str,
) -> dict[str, Any]:
    """A negotiation's details in the shape of the document's ICS answer: the next
    payment (`trnSrcInfo.nextPmtDt`, `fee.curAmt.amt`), the payments made
    (`pmtStatus.chkNum`), the mark's length in days (`entprAgreement.daysCycle`)."""
    pending = [p for p in view.plan if p.paid < p.amount]
    paid = len(view.plan) - len(pending)
    following = pending[0] if pending else None
    total = view.installments_total + view.payment_today
    desc = (
        f"{view.strategy_name}: {len(view.plan)} pagos por {total} {view.currency},"
        f" condonado {view.condoned} {view.currency}"
    )
    if view.break_reason:
        desc += f"; {view.break_reason}"
    return {
        "personInfo": {
            "govIssueIdent": {
                "identSerialNum": national_id,
                "govIssueIdentType": contract_id_type(id_type),
            },
            "contactInfo": {
                "phone": phone,
                "phoneAreaCode": "",
                "phoneType": "",
                "addres": "",
                "city": "",
                "zone": "",
                "addrType": "",
                "addr1": "",
                "otherIdentDoc": {"phoneNumAdditional": "", "phoneAreaCode": "", "phoneType": ""},
                "postAddr": {"latitude": "", "longitude": ""},
            },
        },
        "entityInformer": {"additionalData": [{"name": "ENTIDAD", "value": company_name}]},
        "loanInfoCommon": {"acctId": account, "acctType": product},
        "trnSrcInfo": {
            "channel": channel,
            "action": view.strategy,
            "status": STATE_NAMES.get(view.state, view.state.upper()),
            "contactStatus": "DEUDOR",
            "desc": desc,
            "nextPmtDt": following.due_date.isoformat() if following else "",
            "user": view.adviser or "",
        },
        "transaction": {"required": "N"},
        "refInfo": {"destination": ""},
        "entprAgreement": {
            "scvIdent": str(view.id),
            "daysCycle": str((view.mark_end - view.mark_start).days),
        },
        "pmtStatus": {"chkNum": str(paid)},
        "fee": {
            "curAmt": {
                "amt": cents_of_units(following.amount - following.paid) if following else 0
            },
            "establishDt": view.created_at.date().isoformat(),
        },
    }
