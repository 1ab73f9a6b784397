"""The collections-management contract through the real HTTP server, on both backends,
with the API document's own example payloads (seeds/003): token endpoint, required
headers, the contract's error shape, profile, policies (first call and recalculation),
negotiations for each clientApp and strategy, agreement ICS."""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from recaudo.adapters.db.tables import Company, ContractCommitment, Customer, PaymentProfile
from recaudo.bootstrap import Container
from recaudo.domain.money import Money
from recaudo.domain.plans import french_schedule
from recaudo.services import contract_clients, debt_components, policies
from recaudo.services import negotiations as neg
from recaudo.services.companies import NewCompany, create_company
from recaudo.services.policies import NewPolicy
from tests.e2e.conftest import (
    MAX_UPLOAD_BYTES,
    ROOT_ACTOR,
    Api,
    LogCapture,
    Server,
    assert_problem,
)

PREFIX = "/collections-management"
# The document's header examples (Negotiations table).
INVOKER = {
    "X-Invoker-Channel": "012",
    "X-Invoker-UserIPAddress": "10.5.43.214",
    "X-Invoker-ServerIPAddress": "192.168.169.197",
    "X-Invoker-UserMACAddress": "0E-A5-38-F7-C3-09",
}
TODAY = "2026-03-02"  # the frozen clock's date in Bogotá


def er(code: str, desc: str, kind: str = "OTR") -> dict[str, Any]:
    return {
        "responseType": {"value": "ER"},
        "responseDetail": {"errorCode": code, "errorDesc": desc, "errorType": kind},
    }


def assert_error(
    response: httpx.Response, status: int, code: str, desc: str, kind: str = "OTR"
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == er(code, desc, kind)


# --- the document's example payloads ---------------------------------------------------

PROFILE_REQUEST: dict[str, Any] = {
    "listValidation": [
        {
            "transaccion": {"trnRqUID": "28498521", "operationType": "A"},
            "partyAcctRelRec": {"acctId": "12345678901234567890"},
            "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "1234567890"},
            "compliance": {"personDataProcessing": True},
            "naturalPerson": {
                "personName": {"lastName": "DE_FRANCISCO"},
                "age": 30,
                "city": "DANE",
                "maritalStatusInfo": {"maritalStatus": "S"},
                "semiPrivatePersonInfo": {"educationLevel": "01"},
                "govRank": "Suboficial",
                "businessOccupation": [{"job": "Empleado", "type": "Primary"}],
            },
            "businessInfo": {
                "labourContractType": "Indefinido",
                "labourSector": "Privada",
                "jobYears": 8,
            },
            "collection": {
                "flagSelected": True,
                "suggestedPmtAmt": 1441551,
                "delinqAging": {
                    "amt": 134533,
                    "flagPreventPayment": True,
                    "reason": "The customer said...",
                },
                "totalCurAmt": 1441551,
            },
            "personInfo": {
                "incomeInfo": {"incomeAmt": 25000000, "flagContributor": True},
                "otherIncome": {"amt": 134533},
                "financialLiabilities": {"amt": 134533},
                "financialAssets": {"amt": 134533},
                "expenses": {"amt": 134533},
                "curAmt": {"amt": 134533},
                "totalCurAmt": {"amt": 134533},
                "role": "01",
            },
            "businessProfessionGeneral": {
                "businessType": "actividadGeneral",
                "desc": "actividadGeneral- desc",
            },
            "businessProfessionSpecific": {
                "businessType": "actividadEspecifica",
                "desc": "actividadEspecifica-desc",
            },
            "offer": {"processStage": "02", "indMoment": "01", "executionLine": "V"},
        }
    ]
}
PROFILE_RESPONSE = {
    "listValidation": [
        {
            "transaccion": {"action": "Calculo PERFILAMIENTO", "trnRqUID": "28498521"},
            "partyAcctRelRec": {"acctId": "12345678901234567890"},
            "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "1234567890"},
        }
    ],
    "responseType": {"value": "OK"},
}

FIRST_CALL: dict[str, Any] = {
    "creditAnalysis": [
        {
            "collection": {
                "transaction": {"trnRqUID": "2-2230644544"},
                "strategyType": "",
                "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "79641257"},
                "curAmt": {"amt": None},
                "partyAcctRelRec": {
                    "acctId": "4570215061040388",
                    "amt": None,
                    "bankAcctStatusCode": "",
                    "flagSelectedOffered": "",
                    "additionalAccountId": "",
                    "additionalAcctId": "",
                },
                "pmtStatus": {"flagRecalculate": False},
                "delinqAging": {"daysCount": None},
                "extendedDiscount": {"flagFindeter": "", "flagWalletFindeter": ""},
                "extAcctBal": {"amt": None, "curAmt": {"amt": None}},
                "acctBal": {"amt": None},
                "fee": {"amt": None, "curAmt": []},
                "extraordinaryFee": [],
                "collateralDesc": "",
                "collateral": {"code": ""},
                "capitalizationAcctId": {"code": ""},
                "dueDt": "",
                "insuranceInfo": [],
                "intRateInfo": {"amt": None, "curAmt": [], "rate": None},
                "indebtedness": {
                    "numberOfInstallments": None,
                    "term": None,
                    "establishDt": "",
                    "periodGrace": None,
                    "amt": None,
                    "totalPmtCount": None,
                    "rate": None,
                    "numAsignInstallments": None,
                },
                "validity": {"openDt": "", "endDt": "", "startDt": ""},
                "offer": {"viabilityLevel": "", "flagViability": "true", "amt": None, "count": ""},
                "discount": {"amt": None},
                "causalExceptionInfo": [],
                "causalNoViabilitynInfo": [],
                "additionalData": [],
            }
        }
    ]
}

_CONCEPT_NAMES = (
    "CAPITAL",
    "INTERESES_CORRIENTES",
    "INTERESES_MORA",
    "SEGUROS",
    "CARGOS_CE07",
    "CARGOS_CE014",
    "CARGOS_CE022",
    "CARGOS_CE016",
    "CARGOS_CPA",
    "CARGOS_SIP",
    "COMISION_BANCOLDEX",
    "COMISION_FINAGRO",
    "COMISION_FNG",
    "COMISION_MIPYME",
    "COMISION_USAID",
    "GAC",
)
_EXC = (
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
_SLOTS = (
    "causalDeNoViabilidadHerremienta1",
    *(f"causalDeNoViabilidadPuestaAlDia{i}" for i in range(2, 8)),
)
_FLAGS = (
    "FLAG_VALOR_PAGO",
    "FLAG_VALOR_NUEVA_CUOTA",
    "FLAG_NUEVO_PLAZO",
    "FLAG_PERIODO_GRACIA",
    " FLAG_NUEVA_TASA",
    "FLAG_SALDO_CONSOLIDADO",
    "FLAG_PLAZO_NEGOCIACION",
)


def recalculation(
    strategy: str,
    *,
    payment: float = 0.0,
    installment: float = 0.0,
    term: float = 0.0,
    rates: dict[str, float] | None = None,
    flags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One `creditAnalysis[]` entry as in the document's "Recalculo" examples."""
    rates = rates or {}
    flags = flags or {}
    return {
        "collection": {
            "transaction": {"trnRqUID": "2-2230644544"},
            "strategyType": strategy,
            "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "79641257"},
            "curAmt": {"amt": installment},
            "partyAcctRelRec": {
                "acctId": "4570215061040388",
                "amt": payment,
                "bankAcctStatusCode": "VIGENTE",
                "flagSelectedOffered": "",
                "additionalAccountId": "TARJETA CREDITO",
                "additionalAcctId": "0",
            },
            "pmtStatus": {"flagRecalculate": True},
            "delinqAging": {"daysCount": 95.0},
            "extendedDiscount": {"flagFindeter": None, "flagWalletFindeter": None},
            "extAcctBal": {"amt": 0.0, "curAmt": {"amt": 0.0}},
            "acctBal": {"amt": 1529675.0},
            "fee": {
                "amt": 0,
                "curAmt": [
                    {"desc": d, "amt": 0.0}
                    for d in (
                        "COMISION_MIPYME",
                        "COMISION_FNG",
                        "COMISION_USAID",
                        "COMISION_BANCOLDEX",
                        "COMISION_FINAGRO",
                    )
                ],
            },
            "extraordinaryFee": [{"desc": "CARGOS_SIP", "amt": 0.0}],
            "collateralDesc": "",
            "collateral": {"code": "0.0"},
            "capitalizationAcctId": {"code": ""},
            "dueDt": "",
            "insuranceInfo": [{"amt": 0.0, "policyName": "SEGURO_INCENDIO"}],
            "intRateInfo": {
                "amt": 269139.0,
                "curAmt": [
                    {"desc": name, "rate": rates.get(name, 0.0), "amt": 0.0}
                    for name in _CONCEPT_NAMES
                ]
                + [
                    {"desc": "INTERES_ANTICIPADOS", "amt": 0.0},
                    {"desc": "INTERES_CORTE", "amt": 0.0},
                    {"desc": "INTERES_MORA", "amt": 6646.0},
                ],
                "rate": 0.0,
            },
            "indebtedness": {
                "establishDt": "2024-05-06",
                "numberOfInstallments": 0.0,
                "amt": 0.0,
                "totalPmtCount": 0.0,
                "rate": 0.0,
                "periodGrace": 0.0,
                "numAsignInstallments": term,
                "term": 0.0,
            },
            "validity": {"startDt": "2024-05-06", "openDt": "2024-07-22", "endDt": "2024-05-06"},
            "offer": {"flagViability": "true", "viabilityLevel": "0", "count": "3.0", "amt": 0.0},
            "discount": {"amt": 0.0},
            "causalExceptionInfo": [{"name": n, "value": "0"} for n in _EXC],
            "causalNoViabilitynInfo": [
                {"descriptionDesc": s, "viabilityResult": ""} for s in _SLOTS
            ],
            "additionalData": [{"name": n, "value": flags.get(n.strip(), "0")} for n in _FLAGS],
        }
    }


# The document's negotiation examples, one per section (clientApp and strategy).
BM_PPPL: dict[str, Any] = {
    "clientApp": {"name": "BM"},
    "collection": {
        "partyAcctRelRec": {"acctId": "872452983283", "amt": 1244, "rate": 23},
        "strategyType": "PPPL",
        "startDt": "2022-09-22",
        "endDt": "2022-09-22",
        "adviser": {"adviserId": "User_root"},
        "submitOffice": {"branchId": "9999"},
        "numAsignInstallments": 24,
        "periodGrace": 24,
        "indebtedness": {"rate": 23},
        "partialPmt": "T",
    },
}
BM_PDDA: dict[str, Any] = {
    "clientApp": {"name": "BM"},
    "collection": {
        "partyAcctRelRec": {"acctId": "123456789", "amt": 2343, "rate": 23},
        "strategyType": "PDDA",
        "startDt": "2022-09-22",
        "endDt": "2022-09-22",
        "adviser": {"adviserId": "User_root"},
        "submitOffice": {"branchId": "9999"},
        "numAsignInstallments": 24,
        "periodGrace": 24,
        "indebtedness": {"rate": 23, "numAsignInstallments": 24},
        "partialPmt": "T",
    },
}
BM_PPPS: dict[str, Any] = {
    "clientApp": {"name": "BM"},
    "collection": {
        "partyAcctRelRec": {"acctId": "872452983283", "amt": 12, "rate": 23},
        "strategyType": "PPPS",
        "startDt": "2022-09-22",
        "endDt": "2022-09-22",
        "adviser": {"adviserId": "User_root"},
        "submitOffice": {"branchId": "9999"},
        "numAsignInstallments": 24,
        "periodGrace": 24,
        "indebtedness": {"rate": 33},
        "partialPmt": "T",
        "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "1234567890"},
        "type": "R26",
        "offer": {"effDt": "2022-09-22", "trnRqUID": "28498521"},
        "intRateInfo": {
            "rate": 33,
            "intRateType": 123,
            "additionalData": [
                {"name": "PORCONDONAINTCTE", "value": 30.423},
                {"name": "PORCONDONAINTMORA", "value": 21.423},
                {"name": "PORCONDONACARGOS ", "value": 44.423},
                {"name": "PORCONDONACONTIN", "value": 30.423},
                {"name": "PORCONDONAGAC", "value": 88.432},
                {"name": "PORCONDONOTRCRGOS", "value": 44.423},
                {"name": "PORCONDONCOMOP", "value": 88.432},
                {"name": "PORCONDONSEGVID", "value": 76.4333},
                {"name": "PORCONDONSEGIRT", "value": 76.4333},
            ],
        },
    },
}
OTC_CNTL: dict[str, Any] = {
    "clientApp": {"name": "OTC"},
    "collection": {
        "partyAcctRelRec": {"acctId": "456892344", "amt": 14},
        "strategyId": "05",
        "strategyType": "CNTL",
        "causalCode": "303",
        "govIssueIdent": {"identSerialNum": "1234567890", "govIssueIdentType": "CC"},
        "startDt": "2022-09-22",
        "endDt": "2022-09-22",
        "numAsignInstallments": 24,
    },
}
OCR_PPPL: dict[str, Any] = {
    "clientApp": {"name": "OCR"},
    "collection": {
        "partyAcctRelRec": {"acctId": "456892344", "amt": 14},
        "strategyType": "PPPL",
        "strategyId": "05",
        "causalCode": "302",
        "govIssueIdent": {"identSerialNum": "1234567890", "govIssueIdentType": "CC"},
        "startDt": "2022-09-22",
        "endDt": "2022-09-22",
        "numAsignInstallments": 24,
    },
}
PRERM_CONDONATION: list[dict[str, Any]] = [
    {"name": "% A CONDONAR POR CAPITAL", "value": 30.4},
    {"name": "% A CONDONAR POR INTERES CORRIENTE", "value": 21.4},
    {"name": "% A CONDONAR POR INTERES DE DE MORA ", "value": 44.4},
    {"name": "% A CONDONAR POR INTERESES EXTRACONTABLES O CONTINGENTES", "value": 21.4},
    {"name": "% A CONDONAR POR OTROS CONCEPTOS", "value": 88.4},
]
OCR_PRERM: dict[str, Any] = {
    "clientApp": {"name": "OCR"},
    "collection": {
        "processDate": "2022-09-22",
        "govIssueIdent": {"identSerialNum": "1234567890", "govIssueIdentType": "CC"},
        "strategyType": "PRERM",
        "strategyId": "07",
        "causalCode": "307",
        "offer": {"requestNumber": "123A", "periodGrace": 23, "periodGraceDeath": 111},
        "partyAcctRelRec": {"acctId": "872452983283"},
        "numAsignInstallments": 24,
        "quotaInfo": {"amt": 12345678987654},
        "intRateInfo": {"rate": 33, "additionalData": PRERM_CONDONATION},
    },
}
OTC_PRERM: dict[str, Any] = {**OCR_PRERM, "clientApp": {"name": "OTC"}}
DEFAULT_PDIA: dict[str, Any] = {
    "clientApp": {"name": "BM || SLP || OTC || OCR"},
    "collection": {
        "partialPmt": "T",
        "intRateInfo": {
            "additionalData": [{"name": "Nombre porcentaje", "value": 99.445}],
            "amt": 1432,
            "curRate": 2,
            "rate": 99.445,
            "intRateType": "F",
        },
        "createdDt": "2022-09-22",
        "periodGrace": 24,
        "processDate": "2022-09-22",
        "offer": {
            "periodGrace": 23,
            "effDt": "2022-09-22",
            "collateralType": "20",
            "periodGraceDeath": 111,
            "requestNumber": "123A",
            "trnRqUID": "28498521",
        },
        "adviser": {"adviserId": "User_root"},
        "strategyType": "PDIA",
        "partyAcctRelRec": {
            "acctId": "12345678901234567890",
            "amt": 1234,
            "rate": 33,
            "acctType": "Credit...",
        },
        "numAsignInstallments": 24,
        "strategyId": "03",
        "submitOffice": {"branchId": "9999"},
        "type": "R26",
        "causalCode": "302",
        "endDt": "2022-09-22",
        "indebtedness": {"rate": 33, "numAsignInstallments": 24},
        "govIssueIdent": {"identSerialNum": "1234567890", "govIssueIdentType": "CC"},
        "startDt": "2022-09-22",
        "quotaInfo": {"amt": 213},
        "invoicePmtInfo": {"daysCycle": 24},
    },
}


# --- the harness -----------------------------------------------------------------------

POLICIES: dict[str, dict[str, Any]] = {
    "CNTL": {"condonation": {"late_interest": "50"}},
    "PDIA": {},
    "PDDA": {"term": 6, "annual_rate": "0"},
    "PPPL": {"term": 12, "annual_rate": "18"},
    "PPPA": {
        "term": 12,
        "annual_rate": "18",
        "condonation": {"late_interest": "100"},
        "condonation_at": 2,
    },
    "PPPS": {"term": 24, "annual_rate": "24"},
    "PRERM": {"term": 24, "annual_rate": "24"},
    "REDIF": {"term": 12, "annual_rate": "20"},
}


@dataclass
class Contract:
    api: Api
    banco: Company
    client_id: str
    client_secret: str
    http: httpx.Client
    tokens: list[str] = field(default_factory=list)

    def token(self, client_id: str | None = None, secret: str | None = None) -> str:
        response = self.http.post(
            f"{PREFIX}/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id or self.client_id,
                "client_secret": secret or self.client_secret,
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def headers(self, token: str | None = None, **changes: str | None) -> dict[str, str]:
        if token is None:
            if not self.tokens:
                self.tokens.append(self.token())
            token = self.tokens[0]
        headers: dict[str, str | None] = {
            **INVOKER,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
        }
        headers.update(changes)
        return {k: v for k, v in headers.items() if v is not None}

    def post(self, path: str, body: Any, **headers: str | None) -> httpx.Response:
        return self.http.post(f"{PREFIX}{path}", json=body, headers=self.headers(**headers))

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(f"{PREFIX}{path}", params=params, headers=self.headers())


@pytest.fixture
def cm(api: Api) -> Iterator[Contract]:
    """A Colombian bank (COP) with the document's customers and obligations, a policy
    per strategy (30+ days past due), and a contract client.

    - Carlos Rojas, CC 79641257: obligation 4570215061040388 of 15,363.21 COP due
      2025-11-27 (95 days late on 2026-03-02, as in the document's recalculation):
      15,296.75 capital (`acctBal` 1529675) and 66.46 late interest (`INTERES_MORA` 6646).
    - Ana Gómez, CC 1234567890: obligations 872452983283, 123456789, 456892344 and
      12345678901234567890 of 1,200.00 COP each due 2026-01-01 (60 days late): 1,000.00
      capital, 150.00 current interest, 50.00 late interest.
    """
    uow, clock = api.uow, api.clock
    banco = create_company(
        uow, NewCompany("banco", "Banco de Prueba S.A.", "CO"), actor=ROOT_ACTOR, clock=clock
    )
    carlos = api.customer(banco, "79641257", "Carlos Rojas")
    api.debt(banco, carlos, "4570215061040388", "15363.21", date(2025, 11, 27))
    debt_components.set_components(
        uow,
        banco.id,
        "4570215061040388",
        {"capital": "15296.75", "late_interest": "66.46"},
        actor=ROOT_ACTOR,
        clock=clock,
    )
    ana = api.customer(banco, "1234567890", "Ana Gómez")
    for ref in ("872452983283", "123456789", "456892344", "12345678901234567890"):
        api.debt(banco, ana, ref, "1200.00", date(2026, 1, 1))
        debt_components.set_components(
            uow,
            banco.id,
            ref,
            {"capital": "1000.00", "current_interest": "150.00", "late_interest": "50.00"},
            actor=ROOT_ACTOR,
            clock=clock,
        )
    for strategy, parameters in POLICIES.items():
        policies.add_policy(
            uow,
            banco.id,
            NewPolicy(
                f"{strategy.lower()} 30+",
                strategy,
                "days_past_due >= 30",
                "dias_mora",
                "30 days past due at least",
                parameters=parameters,
            ),
            actor=ROOT_ACTOR,
            clock=clock,
        )
    issued = contract_clients.create_client(uow, "banco", actor=ROOT_ACTOR, clock=clock)
    with httpx.Client(base_url=api.url, timeout=30) as http:
        yield Contract(api, banco, issued.client_id, issued.client_secret, http)


# --- token endpoint --------------------------------------------------------------------


def test_token_endpoint(cm: Contract) -> None:
    response = cm.http.post(
        f"{PREFIX}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cm.client_id,
            "client_secret": cm.client_secret,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    assert len(body["access_token"]) == 43
    # HTTP Basic client authentication (RFC 6749 2.3.1) works too.
    basic = base64.b64encode(f"{cm.client_id}:{cm.client_secret}".encode()).decode()
    response = cm.http.post(
        f"{PREFIX}/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200, response.text
    assert (
        cm.post("/v1/negotiations/profile", PROFILE_REQUEST, Authorization=None).status_code == 401
    )
    assert (
        cm.post(
            "/v1/negotiations/profile",
            PROFILE_REQUEST,
            Authorization=f"Bearer {response.json()['access_token']}",
        ).status_code
        == 200
    )


def test_token_refusals(cm: Contract) -> None:
    url = f"{PREFIX}/oauth2/token"
    ok = {"grant_type": "client_credentials", "client_id": cm.client_id}
    assert_error(
        cm.http.post(url, data={**ok, "client_secret": "wrong"}),
        401,
        "10401",
        "No autorizado: invalid client credentials",
        "SEG",
    )
    assert_error(
        cm.http.post(url, data=ok),
        401,
        "10401",
        "No autorizado: faltan client_id y client_secret",
        "SEG",
    )
    assert_error(
        cm.http.post(url, data={"client_id": cm.client_id, "client_secret": cm.client_secret}),
        400,
        "10002",
        "El objeto de Entrada es nulo: grant_type",
    )
    assert_error(
        cm.http.post(url, data={**ok, "grant_type": "password", "client_secret": "x"}),
        400,
        "10007",
        "Error al transformar: grant_type: solo client_credentials",
    )
    assert_error(
        cm.http.post(url, json={**ok, "client_secret": cm.client_secret}),
        415,
        "10415",
        "El cuerpo debe ser application/x-www-form-urlencoded",
    )
    assert_error(
        cm.http.post(
            url,
            content="grant_type=client_credentials&grant_type=x&client_id=a&client_secret=b",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        400,
        "10007",
        "Error al transformar: grant_type: parametro repetido",
    )
    # Control characters (a NUL would make PostgreSQL refuse the query) are no client.
    for client_id, secret in (("a%00b", "x"), (cm.client_id, "x%00"), (f"{cm.client_id}%0A", "x")):
        assert_error(
            cm.http.post(
                url,
                content=f"grant_type=client_credentials&client_id={client_id}&client_secret={secret}",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            401,
            "10401",
            "No autorizado: invalid client credentials",
            "SEG",
        )
    contract_clients.revoke_client(cm.api.uow, cm.client_id, actor=ROOT_ACTOR, clock=cm.api.clock)
    assert_error(
        cm.http.post(url, data={**ok, "client_secret": cm.client_secret}),
        401,
        "10401",
        "No autorizado: invalid client credentials",
        "SEG",
    )


# --- headers and authentication --------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status", "code", "desc", "kind"),
    [
        (
            "client_id",
            401,
            "10401",
            "No autorizado: faltan los headers client_id y client_secret",
            "SEG",
        ),
        (
            "client_secret",
            401,
            "10401",
            "No autorizado: faltan los headers client_id y client_secret",
            "SEG",
        ),
        (
            "Authorization",
            401,
            "10401",
            "No autorizado: falta el header Authorization: Bearer <token>",
            "SEG",
        ),
        *(
            (name, 400, "10002", f"El objeto de Entrada es nulo: header {name}", "OTR")
            for name in INVOKER
        ),
    ],
)
def test_missing_header(
    cm: Contract, header: str, status: int, code: str, desc: str, kind: str
) -> None:
    response = cm.post("/v1/negotiations/profile", PROFILE_REQUEST, **{header: None})
    assert_error(response, status, code, desc, kind)
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    # Nothing was recorded.
    with cm.api.uow as uow:
        assert uow.session.scalars(select(PaymentProfile)).all() == []


@pytest.mark.parametrize(
    ("header", "value", "desc"),
    [
        (
            "X-Invoker-UserIPAddress",
            "10.5.43",
            "header X-Invoker-UserIPAddress: no es una direccion IP",
        ),
        (
            "X-Invoker-ServerIPAddress",
            "server",
            "header X-Invoker-ServerIPAddress: no es una direccion IP",
        ),
        (
            "X-Invoker-UserMACAddress",
            "0E-A5-38-F7-C3",
            "header X-Invoker-UserMACAddress: no es una direccion MAC",
        ),
        ("X-Invoker-Channel", "0 1", "header X-Invoker-Channel: de 1 a 10 letras o digitos"),
    ],
)
def test_malformed_header(cm: Contract, header: str, value: str, desc: str) -> None:
    response = cm.post("/v1/negotiations/profile", PROFILE_REQUEST, **{header: value})
    assert_error(response, 400, "10007", f"Error al transformar: {desc}")


def test_bad_and_expired_tokens(cm: Contract, api: Api) -> None:
    token = cm.token()
    invalid = "No autorizado: invalid or expired token"
    for bad in (token + "x", "made-up-token"):
        assert_error(
            cm.post("/v1/negotiations/profile", PROFILE_REQUEST, Authorization=f"Bearer {bad}"),
            401,
            "10401",
            invalid,
            "SEG",
        )
    assert_error(
        cm.post("/v1/negotiations/profile", PROFILE_REQUEST, Authorization=f"Basic {token}"),
        401,
        "10401",
        "No autorizado: falta el header Authorization: Bearer <token>",
        "SEG",
    )
    # Right token, wrong secret.
    assert_error(
        cm.post(
            "/v1/negotiations/profile",
            PROFILE_REQUEST,
            Authorization=f"Bearer {token}",
            client_secret="nope",
        ),
        401,
        "10401",
        "No autorizado: invalid client credentials",
        "SEG",
    )
    # Another client's token with this client's credentials.
    other = contract_clients.create_client(api.uow, "banco", actor=ROOT_ACTOR, clock=api.clock)
    foreign = cm.token(other.client_id, other.client_secret)
    assert_error(
        cm.post("/v1/negotiations/profile", PROFILE_REQUEST, Authorization=f"Bearer {foreign}"),
        401,
        "10401",
        invalid,
        "SEG",
    )
    # The document's own spelling of the scheme is accepted.
    assert (
        cm.post(
            "/v1/negotiations/profile", PROFILE_REQUEST, Authorization=f"Barear {token}"
        ).status_code
        == 200
    )
    api.clock.advance(seconds=3600)
    assert_error(
        cm.post("/v1/negotiations/profile", PROFILE_REQUEST, Authorization=f"Bearer {token}"),
        401,
        "10401",
        invalid,
        "SEG",
    )


def test_a_client_sees_only_its_company(cm: Contract, api: Api) -> None:
    """A client of acme (Chile) does not find banco's obligations."""
    acme_client = contract_clients.create_client(api.uow, "acme", actor=ROOT_ACTOR, clock=api.clock)
    token = cm.token(acme_client.client_id, acme_client.client_secret)
    response = cm.http.get(
        f"{PREFIX}/v1/agreement/ics",
        params={"acctId": "4570215061040388"},
        headers={
            **INVOKER,
            "client_id": acme_client.client_id,
            "client_secret": acme_client.client_secret,
            "Authorization": f"Bearer {token}",
        },
    )
    assert_error(response, 404, "00502", "CUENTA NO EXISTE.", "DBA")


# --- malformed requests: never a 500, always the contract's shape -----------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "desc"),
    [
        (b"", 400, "10002", "El objeto de Entrada es nulo: body"),
        (b"{not json", 400, "10007", "Error al transformar: body: no es JSON valido"),
        (b"[1, 2]", 400, "10007", "Error al transformar: body: debe ser un objeto JSON"),
        (b"{}", 400, "10002", "El objeto de Entrada es nulo: listValidation"),
        (b'{"listValidation": []}', 400, "10002", "El objeto de Entrada es nulo: listValidation"),
        (
            b'{"listValidation": {}}',
            400,
            "10007",
            "Error al transformar: listValidation: debe ser una lista",
        ),
        (
            b'{"listValidation": [1]}',
            400,
            "10007",
            "Error al transformar: listValidation[0]: debe ser un objeto",
        ),
        (b"\xff\xfe", 400, "10007", "Error al transformar: body: no es JSON valido"),
        (b'{"a": NaN}', 400, "10007", "Error al transformar: body: no es JSON valido"),
    ],
)
def test_malformed_profile_bodies(
    cm: Contract, body: bytes, status: int, code: str, desc: str
) -> None:
    response = cm.http.post(
        f"{PREFIX}/v1/negotiations/profile",
        content=body,
        headers={**cm.headers(), "Content-Type": "application/json"},
    )
    assert_error(response, status, code, desc)


INCOME = "Error al transformar: listValidation[0].personInfo.incomeInfo.incomeAmt"


def _profile_with(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(PROFILE_REQUEST)
    item = body["listValidation"][0]
    for path, value in changes.items():
        node = item
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return body


@pytest.mark.parametrize(
    ("changes", "status", "code", "desc"),
    [
        (
            {"personInfo__incomeInfo__incomeAmt": "abc"},
            400,
            "10007",
            f"{INCOME}: debe ser numerico",
        ),
        (
            {"personInfo__incomeInfo__incomeAmt": 25000000.5},
            400,
            "10007",
            "Error al transformar: listValidation[0].personInfo.incomeInfo.incomeAmt: monto sin "
            "separador decimal: los dos ultimos digitos son decimales",
        ),
        (
            {"personInfo__incomeInfo__incomeAmt": -1},
            400,
            "10007",
            "Error al transformar: listValidation[0].personInfo.incomeInfo.incomeAmt: el monto no "
            "puede ser negativo",
        ),
        (
            {"personInfo__incomeInfo__incomeAmt": 10**30},
            400,
            "10007",
            f"{INCOME}: fuera de rango",
        ),
        (
            {"personInfo__incomeInfo__incomeAmt": True},
            400,
            "10007",
            f"{INCOME}: debe ser numerico",
        ),
        (
            {"transaccion__trnRqUID": None},
            400,
            "10002",
            "El objeto de Entrada es nulo: listValidation[0].transaccion.trnRqUID",
        ),
        (
            {"govIssueIdent": ...},
            400,
            "10002",
            "El objeto de Entrada es nulo: listValidation[0].govIssueIdent",
        ),
        (
            {"govIssueIdent__govIssueIdentType": "XX"},
            400,
            "10007",
            "Error al transformar: listValidation[0].govIssueIdent.govIssueIdentType: tipo no "
            "valido (CC, NI, CE, NE, TI, OT)",
        ),
        (
            {"partyAcctRelRec__acctId": "123456789012345678901"},
            400,
            "10007",
            "Error al transformar: listValidation[0].partyAcctRelRec.acctId: a lo mas 20 "
            "caracteres sin espacios",
        ),
        (
            {"partyAcctRelRec__acctId": "12345678901234567890 "},
            400,
            "10007",
            "Error al transformar: listValidation[0].partyAcctRelRec.acctId: relleno a mas de 20 "
            "caracteres",
        ),
        (
            {"partyAcctRelRec__acctId": "999"},
            404,
            "00502",
            "CUENTA NO EXISTE.",
        ),
        (
            # The obligation exists, but it is not this customer's.
            {"govIssueIdent__identSerialNum": "79641257"},
            404,
            "00502",
            "CUENTA NO EXISTE.",
        ),
        (
            {"compliance__personDataProcessing": False},
            422,
            "10001",
            "Error al ejecutar el PL: listValidation[0].compliance.personDataProcessing es false: "
            "sin autorizacion no se registra el perfil",
        ),
        (
            {"collection__delinqAging__reason": "no\u0000pude"},
            400,
            "10007",
            "Error al transformar: listValidation[0].collection.delinqAging.reason: caracteres de "
            "control no permitidos",
        ),
        (
            {"transaccion__trnRqUID": "28498521\u0007"},
            400,
            "10007",
            "Error al transformar: listValidation[0].transaccion.trnRqUID: caracteres de control "
            "no permitidos",
        ),
        (
            {"partyAcctRelRec__acctId": "8724\u000052983283"},
            400,
            "10007",
            "Error al transformar: listValidation[0].partyAcctRelRec.acctId: a lo mas 20 "
            "caracteres sin espacios",
        ),
        (
            {"compliance__personDataProcessing": "maybe"},
            400,
            "10007",
            "Error al transformar: listValidation[0].compliance.personDataProcessing: "
            "debe ser true o false",
        ),
    ],
)
def test_profile_refusals(
    cm: Contract, changes: dict[str, Any], status: int, code: str, desc: str
) -> None:
    response = cm.post("/v1/negotiations/profile", _profile_with(**changes))
    assert_error(response, status, code, desc, "DBA" if code == "00502" else "OTR")
    with cm.api.uow as uow:
        assert uow.session.scalars(select(PaymentProfile)).all() == []


def test_huge_bodies(cm: Contract) -> None:
    limit = MAX_UPLOAD_BYTES  # the contract's 1 MiB, lowered to the API's limit
    big = b'{"listValidation": [' + b" " * limit + b"]}"
    declared = cm.http.post(
        f"{PREFIX}/v1/negotiations/profile",
        content=big,
        headers={**cm.headers(), "Content-Type": "application/json"},
    )
    assert_error(declared, 413, "10413", f"El cuerpo supera {limit} bytes")

    def chunks() -> Iterator[bytes]:
        yield b'{"listValidation": ['
        for _ in range(limit // 4096 + 1):
            yield b" " * 4096
        yield b"]}"

    streamed = cm.http.post(
        f"{PREFIX}/v1/negotiations/profile",
        content=chunks(),
        headers={**cm.headers(), "Content-Type": "application/json"},
    )
    assert_error(streamed, 413, "10413", f"El cuerpo supera {limit} bytes")


def test_unknown_paths_and_methods(cm: Contract) -> None:
    assert_error(
        cm.http.get(f"{PREFIX}/v1/nothing"),
        404,
        "10404",
        "Recurso no existe: /collections-management/v1/nothing",
    )
    assert_error(
        cm.http.get(f"{PREFIX}/v1/negotiations"),
        405,
        "10405",
        "Metodo GET no permitido en /collections-management/v1/negotiations",
    )
    assert_error(
        cm.http.post(f"{PREFIX}/v1/agreement/ics", json={}),
        405,
        "10405",
        "Metodo POST no permitido en /collections-management/v1/agreement/ics",
    )
    assert_error(
        cm.http.post(
            f"{PREFIX}/v1/negotiations/profile",
            content=b"a=b",
            headers={**cm.headers(), "Content-Type": "text/plain"},
        ),
        415,
        "10415",
        "El cuerpo debe ser application/json",
    )
    # The rest of the API keeps its problems.
    assert_problem(cm.http.get("/api/v1/nothing"), 404, "not_found")


# --- profile ---------------------------------------------------------------------------


def test_profile_with_the_documents_example(cm: Contract) -> None:
    response = cm.post("/v1/negotiations/profile", PROFILE_REQUEST)
    assert response.status_code == 200, response.text
    assert response.json() == PROFILE_RESPONSE
    with cm.api.uow as uow:
        ana = uow.session.scalars(
            select(Customer).where(Customer.national_id == "1234567890")
        ).one()
        (row,) = uow.session.scalars(select(PaymentProfile)).all()
        # Two implied decimals: 25000000 is 250,000.00 COP; 134533 is 1,345.33.
        assert (
            row.customer_id,
            row.income_minor,
            row.other_income_minor,
            row.expenses_minor,
            row.self_employed,
            row.sales_minor,
            row.operating_costs_minor,
            row.cash_today_minor,
            row.source,
        ) == (ana.id, 25000000, 134533, 134533, False, None, None, 134533, "collections-management")
        assert row.declared_by.startswith("contract_client:")
        assert row.details == {
            "age": 30,
            "city": "DANE",
            "marital_status": "S",
            "education_level": "01",
            "rank": "Suboficial",
            "has_last_name": True,
            "occupations": [{"job": "Empleado", "kind": "Primary"}],
            "contract_type": "Indefinido",
            "sector": "Privada",
            "years_in_activity": 8,
            "activity": "actividadGeneral- desc",
            "specific_activity": "actividadEspecifica-desc",
            "can_pay_installments": True,
            "overcame_hardship": True,
            "reason_for_default": "The customer said...",
            "role": "01",
            "declares_income": True,
            "process_stage": "02",
            "moment": "01",
            "product_line": "V",
            "operation_type": "A",
            "declared_sales_cents": 134533,
            "declared_operating_costs_cents": 134533,
            "request_id": "28498521",
            "suggested_installment": "14415.51",
        }
    # Right-padded to 20 characters, as the document says loans are sent.
    padded = _profile_with(partyAcctRelRec__acctId="872452983283        ")
    response = cm.post("/v1/negotiations/profile", padded)
    assert response.status_code == 200, response.text
    assert response.json()["listValidation"][0]["partyAcctRelRec"] == {"acctId": "872452983283"}


def test_profile_self_employed_and_without_obligation(cm: Contract) -> None:
    body = _profile_with(
        partyAcctRelRec=..., personInfo__financialAssets=..., personInfo__expenses=...
    )
    body["listValidation"][0]["businessPerson"] = {
        "financialAssets": {"amt": 300000000},
        "expenses": {"amt": 100000000},
    }
    response = cm.post("/v1/negotiations/profile", body)
    assert response.status_code == 200, response.text
    assert response.json()["listValidation"][0]["partyAcctRelRec"] == {"acctId": ""}
    view = neg.latest_profile(
        cm.api.uow, cm.banco.id, _customer_id(cm, "1234567890"), actor=ROOT_ACTOR
    )
    assert view is not None
    # (3,000,000.00 − 1,000,000.00) + 1,345.33 − 1,345.33
    assert (view.self_employed, view.sales, view.operating_costs, view.available_income) == (
        True,
        Decimal("3000000.00"),
        Decimal("1000000.00"),
        Decimal("2000000.00"),
    )


def test_profile_amounts_in_clp(cm: Contract, api: Api) -> None:
    """Chile's peso has no decimals: 25000000 is 250,000 CLP; 25000050 is refused."""
    acme_client = contract_clients.create_client(api.uow, "acme", actor=ROOT_ACTOR, clock=api.clock)
    token = cm.token(acme_client.client_id, acme_client.client_secret)
    ana = api.customer(api.acme, "10379613-K", "Juana Pérez")
    headers = {
        **INVOKER,
        "client_id": acme_client.client_id,
        "client_secret": acme_client.client_secret,
        "Authorization": f"Bearer {token}",
    }
    body = _profile_with(
        partyAcctRelRec=...,
        govIssueIdent={"govIssueIdentType": "OT", "identSerialNum": "10.379.613-k"},
    )
    body["listValidation"][0]["personInfo"]["incomeInfo"]["incomeAmt"] = 25000050
    refused = cm.http.post(f"{PREFIX}/v1/negotiations/profile", json=body, headers=headers)
    assert_error(
        refused,
        400,
        "10007",
        "Error al transformar: listValidation[0].personInfo.incomeInfo.incomeAmt: CLP no admite "
        "decimales: el monto debe terminar en 00",
    )
    body["listValidation"][0]["personInfo"]["incomeInfo"]["incomeAmt"] = 25000000
    body["listValidation"][0]["personInfo"]["otherIncome"]["amt"] = 134500
    body["listValidation"][0]["personInfo"]["financialLiabilities"]["amt"] = 100
    body["listValidation"][0]["collection"]["delinqAging"]["amt"] = 0
    body["listValidation"][0]["collection"]["suggestedPmtAmt"] = 1441500
    accepted = cm.http.post(f"{PREFIX}/v1/negotiations/profile", json=body, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["listValidation"][0]["govIssueIdent"] == {
        "govIssueIdentType": "OT",
        "identSerialNum": "10379613K",
    }
    view = neg.latest_profile(api.uow, api.acme.id, ana.id, actor=ROOT_ACTOR)
    assert view is not None
    assert (view.income, view.other_income, view.personal_expenses, view.cash_today) == (
        Decimal("250000"),
        Decimal("1345"),
        Decimal("1"),
        Decimal("0"),
    )


def _customer_id(cm: Contract, national_id: str) -> int:
    with cm.api.uow as uow:
        return uow.session.scalars(
            select(Customer.id).where(
                Customer.company_id == cm.banco.id, Customer.national_id == national_id
            )
        ).one()


# --- policies --------------------------------------------------------------------------


def _concepts(
    amounts: dict[str, int], rates: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    names = ("CAPITAL", "INTERESES_CORRIENTES", "INTERESES_MORA", "SEGUROS", "GAC", "CARGOS_CPA")
    rates = rates or {}
    return [{"desc": n, "rate": rates.get(n, 0.0), "amt": amounts.get(n, 0)} for n in names]


def _no_causes(*texts: str) -> list[dict[str, str]]:
    filled = list(texts) + [""] * (7 - len(texts))
    return [
        {"descriptionDesc": s, "viabilityResult": t} for s, t in zip(_SLOTS, filled, strict=True)
    ]


def _flags_answer(**given: str) -> list[dict[str, str]]:
    names = [n.strip() for n in _FLAGS]
    return [{"name": n, "value": given.get(n, "0")} for n in names]


def test_policies_first_call_with_the_documents_example(cm: Contract) -> None:
    response = cm.post("/v1/negotiations/policies", FIRST_CALL)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["responseType"] == {"value": "OK"}
    entries = [e["collection"] for e in body["creditAnalysis"]]
    # Every strategy with a policy, in Recaudo's order; all viable at 95 days.
    assert [e["strategyType"] for e in entries] == [
        "CNTL", "PDIA", "PDDA", "PPPL", "PPPA", "PPPS", "PRERM", "REDIF",
    ]  # fmt: skip
    assert [e["offer"]["viabilityLevel"] for e in entries] == [str(i) for i in range(1, 9)]
    assert {e["offer"]["count"] for e in entries} == {"8"}
    cntl = entries[0]
    # CNTL: 50 % of the 66.46 late interest condoned; 15,363.21 − 33.23 = 15,329.98 today.
    assert cntl == {
        "transaction": {"trnRqUID": "2-2230644544"},
        "strategyType": "CNTL",
        "govIssueIdent": {"govIssueIdentType": "CC", "identSerialNum": "79641257"},
        "curAmt": {"amt": 0},
        "partyAcctRelRec": {
            "acctId": "4570215061040388",
            "amt": 1532998,
            "bankAcctStatusCode": "VENCIDO",
            "flagSelectedOffered": "FDTM",
            "additionalAccountId": "",
            "additionalAcctId": "4570215061040388",
        },
        "pmtStatus": {"flagRecalculate": False},
        "delinqAging": {"daysCount": 95},
        "extendedDiscount": {"flagFindeter": "", "flagWalletFindeter": ""},
        "extAcctBal": {"amt": 0, "curAmt": {"amt": 0}},
        "acctBal": {"amt": 1529675},
        "fee": {"amt": 0, "curAmt": []},
        "extraordinaryFee": [],
        "collateralDesc": "",
        "collateral": {"code": ""},
        "capitalizationAcctId": {"code": ""},
        "dueDt": "2025-11-27",
        "insuranceInfo": [{"policyName": "SEGURO_VIDA_CTA_COBRO", "amt": 0}],
        "intRateInfo": {
            "amt": 6646,
            "curAmt": _concepts(
                {"CAPITAL": 1529675, "INTERESES_MORA": 6646}, {"INTERESES_MORA": 50.0}
            ),
            "rate": 0.0,
        },
        "indebtedness": {
            "establishDt": TODAY,
            "numberOfInstallments": 0,
            "amt": 0,
            "totalPmtCount": 0,
            "rate": 0.0,
            "periodGrace": 0,
            "numAsignInstallments": 0,
            "term": 0,
        },
        "validity": {"startDt": TODAY, "openDt": "", "endDt": ""},
        "offer": {"flagViability": "true", "viabilityLevel": "1", "count": "8", "amt": 0.0},
        "discount": {"amt": 3323},
        "causalExceptionInfo": [{"name": n, "value": "0"} for n in _EXC],
        "causalNoViabilitynInfo": _no_causes(),
        "additionalData": _flags_answer(),
    }
    # PPPL: 15,363.21 over 12 months at 18 % a year (1.5 % a month), French schedule.
    pppl = entries[3]
    schedule = french_schedule(
        Money(1536321, "COP"), term=12, annual_rate=Decimal(18), first_due=date(2026, 4, 2)
    )
    assert schedule.fixed_installment == Money(140850, "COP")
    assert pppl["curAmt"] == {"amt": 140850}
    assert pppl["partyAcctRelRec"]["amt"] == 0
    assert pppl["collateralDesc"] == "FRANCES"
    assert pppl["indebtedness"] == {
        "establishDt": TODAY,
        "numberOfInstallments": 12,
        "amt": 140850,
        "totalPmtCount": 12,
        "rate": 18.0,
        "periodGrace": 0,
        "numAsignInstallments": 12,
        "term": 12,
    }
    assert pppl["validity"] == {"startDt": TODAY, "openDt": "2026-04-02", "endDt": "2027-03-02"}
    assert pppl["discount"] == {"amt": 0}


def test_policies_first_call_names_the_causes_of_non_viability(cm: Contract) -> None:
    policies.add_policy(
        cm.api.uow,
        cm.banco.id,
        NewPolicy(
            "pdia small",
            "PDIA",
            "balance <= 1000",
            "causalDeNoViabilidadPuestaAlDia2",
            "balances up to 1,000.00 only",
        ),
        actor=ROOT_ACTOR,
        clock=cm.api.clock,
    )
    body = copy.deepcopy(FIRST_CALL)
    body["creditAnalysis"][0]["collection"]["strategyType"] = "PDIA"
    response = cm.post("/v1/negotiations/policies", body)
    assert response.status_code == 200, response.text
    (entry,) = [e["collection"] for e in response.json()["creditAnalysis"]]
    assert entry["strategyType"] == "PDIA"
    assert entry["offer"] == {
        "flagViability": "false",
        "viabilityLevel": "0",
        "count": "0",
        "amt": 0.0,
    }
    assert entry["causalNoViabilitynInfo"] == _no_causes(
        "causalDeNoViabilidadPuestaAlDia2: balances up to 1,000.00 only"
    )


def test_policies_recalculation_of_one_offer(cm: Contract) -> None:
    """The document's "Recalculo 1 offer" shape: PDD (PDDA) with a new term flagged."""
    item = recalculation("PDD", term=3.0, flags={"FLAG_NUEVO_PLAZO": "1"})
    response = cm.post("/v1/negotiations/policies", {"creditAnalysis": [item]})
    assert response.status_code == 200, response.text
    (entry,) = [e["collection"] for e in response.json()["creditAnalysis"]]
    # The whole 15,363.21 is overdue: deferred over 3 installments at 0 %:
    # 5,121.07, 5,121.07, 5,121.07 (the last absorbs nothing here).
    assert entry["strategyType"] == "PDD"
    assert entry["pmtStatus"] == {"flagRecalculate": True}
    assert entry["curAmt"] == {"amt": 512107}
    assert entry["indebtedness"]["numAsignInstallments"] == 3
    assert entry["validity"] == {"startDt": TODAY, "openDt": "2026-04-02", "endDt": "2026-06-02"}
    assert entry["additionalData"] == _flags_answer(FLAG_NUEVO_PLAZO="1")
    # Without the flag the value is not taken: the policy's 6 installments stay.
    item = recalculation("PDD", term=3.0)
    item["collection"]["additionalData"][0]["value"] = "0"
    response = cm.post("/v1/negotiations/policies", {"creditAnalysis": [item]})
    (entry,) = [e["collection"] for e in response.json()["creditAnalysis"]]
    assert entry["indebtedness"]["numAsignInstallments"] == 6


def test_policies_recalculation_more_than_one_offer(cm: Contract) -> None:
    """The document's "Recalculo more 1 offer": CNT with 0.5 % per concept, and PDIA."""
    rates = {name: 0.5 for name in _CONCEPT_NAMES if name != "CAPITAL"}
    response = cm.post(
        "/v1/negotiations/policies",
        {"creditAnalysis": [recalculation("CNT", term=3.0, rates=rates), recalculation("PDIA")]},
    )
    assert response.status_code == 200, response.text
    cnt, pdia = [e["collection"] for e in response.json()["creditAnalysis"]]
    # 0.5 % of 66.46 is 0.3323: 0.33 condoned; 15,363.21 − 0.33 = 15,362.88 today.
    assert cnt["strategyType"] == "CNT"
    assert cnt["partyAcctRelRec"]["amt"] == 1536288
    assert cnt["discount"] == {"amt": 33}
    assert cnt["intRateInfo"]["curAmt"] == _concepts(
        {"CAPITAL": 1529675, "INTERESES_MORA": 6646},
        {
            "INTERESES_CORRIENTES": 0.5,
            "INTERESES_MORA": 0.5,
            "SEGUROS": 0.5,
            "GAC": 0.5,
            "CARGOS_CPA": 0.5,
        },
    )
    assert pdia["strategyType"] == "PDIA"
    assert pdia["partyAcctRelRec"]["amt"] == 1536321


def test_policies_recalculation_with_a_new_installment(cm: Contract) -> None:
    """FLAG_VALOR_NUEVA_CUOTA: the shortest term whose installment fits 2,000.00."""
    item = recalculation("PPPL", installment=200000.0, flags={"FLAG_VALOR_NUEVA_CUOTA": "1"})
    response = cm.post("/v1/negotiations/policies", {"creditAnalysis": [item]})
    assert response.status_code == 200, response.text
    (entry,) = [e["collection"] for e in response.json()["creditAnalysis"]]
    term = entry["indebtedness"]["numAsignInstallments"]
    shorter = french_schedule(
        Money(1536321, "COP"), term=term - 1, annual_rate=Decimal(18), first_due=date(2026, 4, 2)
    )
    chosen = french_schedule(
        Money(1536321, "COP"), term=term, annual_rate=Decimal(18), first_due=date(2026, 4, 2)
    )
    assert term == 9
    assert shorter.max_installment.minor > 200000 >= chosen.max_installment.minor
    assert entry["curAmt"] == {"amt": chosen.fixed_installment.minor}


@pytest.mark.parametrize(
    ("mutate", "status", "code", "desc"),
    [
        (
            lambda c: c["pmtStatus"].update(flagRecalculate="yes"),
            400,
            "10007",
            "Error al transformar: creditAnalysis[0].collection.pmtStatus.flagRecalculate: debe "
            "ser true o false",
        ),
        (
            lambda c: c.update(strategyType=""),
            400,
            "10002",
            "El objeto de Entrada es nulo: creditAnalysis[0].collection.strategyType",
        ),
        (
            lambda c: c.update(strategyType="XYZ"),
            400,
            "10007",
            "Error al transformar: creditAnalysis[0].collection.strategyType: herramienta "
            "desconocida (una de CNTL, PDIA, PDDA, PPPL, PPPA, PPPS, PRERM, REDIF)",
        ),
        (
            lambda c: c["intRateInfo"]["curAmt"].append({"desc": "OTRA", "rate": 1}),
            400,
            "10007",
            "Error al transformar: creditAnalysis[0].collection.intRateInfo.curAmt[19].desc: "
            "concepto desconocido 'OTRA'",
        ),
        (
            lambda c: c["intRateInfo"]["curAmt"][-1].update(rate=7),
            400,
            "10007",
            "Error al transformar: creditAnalysis[0].collection.intRateInfo.curAmt[18].rate: "
            "porcentajes distintos (5.0 y 7) para el concepto late_interest",
        ),
        (
            lambda c: c["indebtedness"].update(numAsignInstallments=2.5),
            400,
            "10007",
            "Error al transformar: creditAnalysis[0].collection.indebtedness.numAsignInstallments: "
            "debe ser un numero entero",
        ),
        (
            lambda c: c["partyAcctRelRec"].update(acctId="0000"),
            404,
            "00502",
            "CUENTA NO EXISTE.",
        ),
    ],
)
def test_policies_refusals(cm: Contract, mutate: Any, status: int, code: str, desc: str) -> None:
    item = recalculation("PPPL", rates={"INTERESES_MORA": 5.0})
    mutate(item["collection"])
    response = cm.post("/v1/negotiations/policies", {"creditAnalysis": [item]})
    assert_error(response, status, code, desc, "DBA" if code == "00502" else "OTR")


# --- negotiations ----------------------------------------------------------------------


def _registered(response: httpx.Response, account: str) -> int:
    assert response.status_code == 200, response.text
    body = response.json()
    desc = body["collection"]["desc"]
    assert desc.startswith("successful transaction: negotiation ")
    negotiation_id = int(desc.split()[3])
    assert body == {
        "collection": {
            "partyAcctRelRec": {"acctId": account},
            "state": "Received",
            "createdDt": TODAY,
            "desc": f"successful transaction: negotiation {negotiation_id} proposed",
        }
    }
    return negotiation_id


@pytest.mark.parametrize(
    ("payload", "account", "strategy", "expected"),
    [
        # BM & SLP: CNTL | PDIA | PPPL (PPPL example: 24 installments, 24 grace months).
        (BM_PPPL, "872452983283", "PPPL", {"term": 24, "grace_months": 24}),
        (
            {**BM_PPPL, "clientApp": {"name": "SLP"}},
            "872452983283",
            "PPPL",
            {"term": 24, "grace_months": 24},
        ),
        # BM & SLP: PDDA | PPPA (deferral over indebtedness.numAsignInstallments).
        (BM_PDDA, "123456789", "PDDA", {"term": 24}),
        (
            {
                **BM_PDDA,
                "collection": {**BM_PDDA["collection"], "strategyType": "PPPA"},
            },
            "123456789",
            "PPPA",
            {"term": 24, "grace_months": 24},
        ),
        # BM & SLP: pre-approved PPPS, with its rate and condonation percentages.
        (
            BM_PPPS,
            "872452983283",
            "PPPS",
            {"term": 24, "grace_months": 24, "annual_rate": "33"},
        ),
        # OTC (credit card): CNTL and REDIF (Rediferido: strategyId 04, causal 0000);
        # OCR (revolving): PPPL; BM: CNTL.
        (OTC_CNTL, "456892344", "CNTL", {}),
        (
            {
                **OTC_CNTL,
                "collection": {
                    **OTC_CNTL["collection"],
                    "strategyType": "REDIFERIDO",
                    "strategyId": "04",
                    "causalCode": "0000",
                },
            },
            "456892344",
            "REDIF",
            {"term": 24},
        ),
        (
            {**OTC_CNTL, "clientApp": {"name": "BM"}},
            "456892344",
            "CNTL",
            {"condonation": {"late_interest": "50"}},
        ),
        (OCR_PPPL, "456892344", "PPPL", {"term": 24}),
        # OCR / OTC pre-approved PRERM: grace and dead months from the offer.
        (
            OCR_PRERM,
            "872452983283",
            "PRERM",
            {"term": 24, "grace_months": 23, "dead_months": 111, "annual_rate": "33"},
        ),
        (
            OTC_PRERM,
            "872452983283",
            "PRERM",
            {"term": 24, "grace_months": 23, "dead_months": 111, "annual_rate": "33"},
        ),
    ],
)
def test_negotiation_for_each_client_app_and_strategy(
    cm: Contract, payload: dict[str, Any], account: str, strategy: str, expected: dict[str, Any]
) -> None:
    response = cm.post("/v1/negotiations", payload)
    negotiation_id = _registered(response, account)
    view = neg.get_negotiation(cm.api.uow, cm.banco.id, negotiation_id, actor=ROOT_ACTOR)
    assert (view.strategy, view.state, view.channel) == (
        strategy,
        "proposed",
        "collections-management",
    )
    assert [d.debt for d in view.debts] == [account]
    for key, value in expected.items():
        assert view.parameters[key] == value, key
    with cm.api.uow as uow:
        (record,) = uow.session.scalars(select(ContractCommitment)).all()
        assert (record.kind, record.negotiation_id, record.account) == (
            "T",
            negotiation_id,
            account,
        )
        assert record.details["app"] == payload["clientApp"]["name"]
        assert record.details["invoker_channel"] == "012"


def test_negotiation_pre_approved_condonation_and_commitment(cm: Contract) -> None:
    negotiation_id = _registered(cm.post("/v1/negotiations", BM_PPPS), "872452983283")
    view = neg.get_negotiation(cm.api.uow, cm.banco.id, negotiation_id, actor=ROOT_ACTOR)
    # Several contract names fall on one concept with the same percentage.
    assert view.parameters["condonation"] == {
        "current_interest": "30.423",
        "late_interest": "21.423",
        "other_charges": "44.423",
        "fees": "88.432",
        "insurance": "76.4333",
    }
    assert view.external_id == "cm-28498521"
    # The commitment: 12 is 0.12 COP, at 23.00 % of the negotiation.
    assert [(c.kind, c.amount, c.rate, c.due_date) for c in view.commitments] == [
        ("T", Decimal("0.12"), Decimal("23.00"), date(2022, 9, 22))
    ]
    # 150.00 × 30.423 % = 45.6345 → 45.63; 50.00 × 21.423 % = 10.7115 → 10.71
    assert view.condoned_by_concept == {
        "current_interest": Decimal("45.63"),
        "late_interest": Decimal("10.71"),
    }
    # The same request again is the same negotiation (its trnRqUID is the key).
    assert _registered(cm.post("/v1/negotiations", BM_PPPS), "872452983283") == negotiation_id
    with cm.api.uow as uow:
        rows = uow.session.scalars(select(ContractCommitment)).all()
        assert [(r.kind, r.amount_minor, r.negotiation_id) for r in rows] == [
            ("T", 12, negotiation_id)
        ]


def test_negotiation_default_section_refuses_an_unknown_client_app(cm: Contract) -> None:
    """The "Nuevas Herramientas (Default)" example names the origin as "BM || SLP || OTC
    || OCR": one of them must be sent."""
    response = cm.post("/v1/negotiations", DEFAULT_PDIA)
    assert_error(
        response,
        400,
        "10007",
        "Error al transformar: clientApp.name: origen desconocido (BM, SLP, OTC u OCR)",
    )
    body = copy.deepcopy(DEFAULT_PDIA)
    body["clientApp"]["name"] = "SLP"
    body["collection"]["intRateInfo"]["additionalData"] = []
    negotiation_id = _registered(cm.post("/v1/negotiations", body), "12345678901234567890")
    view = neg.get_negotiation(cm.api.uow, cm.banco.id, negotiation_id, actor=ROOT_ACTOR)
    assert (view.strategy, view.external_id, view.adviser, view.office) == (
        "PDIA",
        "cm-28498521",
        "User_root",
        "9999",
    )


def test_partial_commitments_then_the_total(cm: Contract) -> None:
    """P, P, then T: one negotiation with the three commitments in order."""
    base = copy.deepcopy(BM_PPPL)
    base["collection"]["partyAcctRelRec"]["acctId"] = "872452983283        "  # padded to 20
    steps = [("P", 30000, "2026-03-10"), ("P", 20000, "2026-03-20"), ("T", 10000, "2026-03-31")]
    for n, (kind, amt, end) in enumerate(steps[:2], start=1):
        body = copy.deepcopy(base)
        body["collection"].update(partialPmt=kind, startDt=TODAY, endDt=end)
        body["collection"]["partyAcctRelRec"].update(amt=amt, rate=50)
        response = cm.post("/v1/negotiations", body)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "collection": {
                "partyAcctRelRec": {"acctId": "872452983283"},
                "state": "Received",
                "createdDt": TODAY,
                "desc": f"partial commitment {n} received: the negotiation is registered with "
                "its total (T) commitment",
            }
        }
    # A total of another strategy cannot close them.
    other = copy.deepcopy(base)
    other["collection"].update(strategyType="PPPA")
    refused = cm.post("/v1/negotiations", other)
    assert refused.status_code == 409
    message = (
        "obligation '872452983283' has partial commitments of PPPL: their total cannot be a "
        "PPPA commitment"
    )
    assert refused.json() == {
        "collection": {
            "partyAcctRelRec": {"acctId": "872452983283"},
            "state": "Rejected",
            "createdDt": TODAY,
            "desc": message,
        },
        **er("10001", f"Error al ejecutar el PL: {message}"),
    }
    body = copy.deepcopy(base)
    body["collection"].update(partialPmt="T", startDt=TODAY, endDt="2026-03-31")
    body["collection"]["partyAcctRelRec"].update(amt=10000, rate=100)
    negotiation_id = _registered(cm.post("/v1/negotiations", body), "872452983283")
    view = neg.get_negotiation(cm.api.uow, cm.banco.id, negotiation_id, actor=ROOT_ACTOR)
    assert [(c.position, c.kind, c.amount, c.rate, c.due_date) for c in view.commitments] == [
        (1, "P", Decimal("300.00"), Decimal("50.00"), date(2026, 3, 10)),
        (2, "P", Decimal("200.00"), Decimal("50.00"), date(2026, 3, 20)),
        (3, "T", Decimal("100.00"), Decimal("100.00"), date(2026, 3, 31)),
    ]
    with cm.api.uow as uow:
        rows = uow.session.scalars(select(ContractCommitment).order_by(ContractCommitment.id))
        assert [(r.kind, r.amount_minor, r.negotiation_id) for r in rows] == [
            ("P", 30000, negotiation_id),
            ("P", 20000, negotiation_id),
            ("T", 10000, negotiation_id),
        ]
    # The obligation is now in negotiation: another one is refused, in both shapes.
    again = cm.post("/v1/negotiations", OCR_PRERM)
    assert again.status_code == 409
    assert again.json()["collection"]["state"] == "Rejected"
    assert again.json()["responseDetail"]["errorCode"] == "10001"
    # So is a partial record, which no total could ever close.
    late = copy.deepcopy(base)
    late["collection"].update(partialPmt="P")
    refused = cm.post("/v1/negotiations", late)
    assert refused.status_code == 409
    message = f"obligation '872452983283' is already in negotiation {negotiation_id} (proposed)"
    assert refused.json()["collection"]["desc"] == message
    assert refused.json()["responseDetail"]["errorDesc"] == f"Error al ejecutar el PL: {message}"
    with cm.api.uow as uow:
        assert len(uow.session.scalars(select(ContractCommitment)).all()) == 3


def test_negotiation_refusals(cm: Contract) -> None:
    # Not viable: the policy wants 30 days past due; Ana's new obligation is not due.
    ana = cm.api.customer(cm.banco, "1234567890", "Ana Gómez")
    cm.api.debt(cm.banco, ana, "999000111", "500.00", date(2026, 4, 1))
    body = copy.deepcopy(OTC_CNTL)
    body["collection"]["partyAcctRelRec"]["acctId"] = "999000111"
    response = cm.post("/v1/negotiations", body)
    assert response.status_code == 409, response.text
    message = "CNTL is not viable: 30 days past due at least (dias_mora)"
    assert response.json() == {
        "collection": {
            "partyAcctRelRec": {"acctId": "999000111"},
            "state": "Rejected",
            "createdDt": TODAY,
            "desc": message,
        },
        **er("10001", f"Error al ejecutar el PL: {message}"),
    }
    # A total with partial records but no amount; an unknown account; a bad date.
    unknown = copy.deepcopy(OTC_CNTL)
    unknown["collection"]["partyAcctRelRec"]["acctId"] = "000"
    assert_error(cm.post("/v1/negotiations", unknown), 404, "00502", "CUENTA NO EXISTE.", "DBA")
    wrong_owner = copy.deepcopy(OTC_CNTL)
    wrong_owner["collection"]["govIssueIdent"]["identSerialNum"] = "79641257"
    assert_error(cm.post("/v1/negotiations", wrong_owner), 404, "00502", "CUENTA NO EXISTE.", "DBA")
    bad_date = copy.deepcopy(OTC_CNTL)
    bad_date["collection"]["endDt"] = "2022-13-01"
    assert_error(
        cm.post("/v1/negotiations", bad_date),
        400,
        "10007",
        "Error al transformar: collection.endDt: fecha invalida (YYYY-MM-DD)",
    )
    backwards = copy.deepcopy(OTC_CNTL)
    backwards["collection"]["endDt"] = "2022-09-21"
    assert_error(
        cm.post("/v1/negotiations", backwards),
        400,
        "10007",
        "Error al transformar: collection.endDt: la marca termina antes de empezar",
    )
    partial = copy.deepcopy(OTC_CNTL)
    partial["collection"]["partialPmt"] = "X"
    assert_error(
        cm.post("/v1/negotiations", partial),
        400,
        "10007",
        'Error al transformar: collection.partialPmt: "T" (total) o "P" (parcial)',
    )
    no_amount = copy.deepcopy(OTC_CNTL)
    no_amount["collection"]["partialPmt"] = "P"
    del no_amount["collection"]["partyAcctRelRec"]["amt"]
    assert_error(
        cm.post("/v1/negotiations", no_amount),
        400,
        "10002",
        "El objeto de Entrada es nulo: collection.partyAcctRelRec.amt",
    )
    no_ident = copy.deepcopy(BM_PPPS)
    del no_ident["collection"]["govIssueIdent"]
    assert_error(
        cm.post("/v1/negotiations", no_ident),
        400,
        "10002",
        "El objeto de Entrada es nulo: collection.govIssueIdent",
    )
    unknown_pct = copy.deepcopy(BM_PPPS)
    unknown_pct["collection"]["intRateInfo"]["additionalData"].append({"name": "X", "value": 1})
    assert_error(
        cm.post("/v1/negotiations", unknown_pct),
        400,
        "10007",
        "Error al transformar: collection.intRateInfo.additionalData[9].name: porcentaje "
        "desconocido 'X'",
    )
    with cm.api.uow as uow:
        assert uow.session.scalars(select(ContractCommitment)).all() == []


# --- agreement ICS ---------------------------------------------------------------------


def test_agreement_ics(cm: Contract) -> None:
    negotiation_id = _registered(cm.post("/v1/negotiations", OCR_PPPL), "456892344")
    response = cm.get("/v1/agreement/ics", acctId="456892344           ")
    assert response.status_code == 200, response.text
    view = neg.get_negotiation(cm.api.uow, cm.banco.id, negotiation_id, actor=ROOT_ACTOR)
    first = view.plan[0]
    # 1,200.00 over 24 months at 18 % a year.
    schedule = french_schedule(
        Money(120000, "COP"), term=24, annual_rate=Decimal(18), first_due=date(2026, 4, 2)
    )
    assert (first.due_date, first.amount) == (date(2026, 4, 2), schedule.fixed_installment.amount)
    total = sum((p.amount for p in view.plan), Decimal(0))
    assert response.json() == {
        "personInfo": {
            "govIssueIdent": {"identSerialNum": "1234567890", "govIssueIdentType": "CC"},
            "contactInfo": {
                "phone": "",
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
        "entityInformer": {
            "additionalData": [{"name": "ENTIDAD", "value": "Banco de Prueba S.A."}]
        },
        "loanInfoCommon": {"acctId": "456892344", "acctType": "Servicio"},
        "trnSrcInfo": {
            "channel": "012",
            "action": "PPPL",
            "status": "PROPUESTA",
            "contactStatus": "DEUDOR",
            "desc": f"Plan de pagos a plazo: 24 pagos por {total} COP, condonado 0.00 COP",
            "nextPmtDt": "2026-04-02",
            "user": "",
        },
        "transaction": {"required": "N"},
        "refInfo": {"destination": ""},
        "entprAgreement": {"scvIdent": str(negotiation_id), "daysCycle": "0"},
        "pmtStatus": {"chkNum": "0"},
        "fee": {
            "curAmt": {"amt": schedule.fixed_installment.minor},
            "establishDt": TODAY,
        },
    }
    # The customer's id, when sent, must be the obligation's owner's.
    assert (
        cm.get(
            "/v1/agreement/ics",
            acctId="456892344",
            govIssueIdentType="CC",
            identSerialNum="1234567890",
        ).status_code
        == 200
    )
    assert_error(
        cm.get("/v1/agreement/ics", acctId="456892344", govIssueIdentType="CC", identSerialNum="1"),
        404,
        "00502",
        "CUENTA NO EXISTE.",
        "DBA",
    )


def test_agreement_ics_errors(cm: Contract) -> None:
    assert_error(cm.get("/v1/agreement/ics"), 400, "10002", "El objeto de Entrada es nulo: acctId")
    assert_error(
        cm.get("/v1/agreement/ics", acctId="nope"), 404, "00502", "CUENTA NO EXISTE.", "DBA"
    )
    assert_error(
        cm.get("/v1/agreement/ics", acctId="4570215061040388"),
        404,
        "00503",
        "CUENTA SIN NEGOCIACION.",
        "DBA",
    )


def test_error_bodies_never_leak_internals(
    cm: Contract, monkeypatch: pytest.MonkeyPatch, logs: LogCapture
) -> None:
    """An unexpected failure is a 15001 with an error id, never a traceback."""

    leaked = "-".join(("secret", "internals", "1234567890"))

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(leaked)

    monkeypatch.setattr(neg, "simulate", broken)
    response = cm.post("/v1/negotiations/policies", FIRST_CALL)
    assert response.status_code == 500
    body = response.json()
    desc = body["responseDetail"]["errorDesc"]
    assert desc.startswith("Error inesperado en el procesamiento del servicio (id ")
    assert body == er("15001", desc)
    assert leaked not in response.text and "Traceback" not in response.text
    assert json.loads(response.text) == body
    # The log has the error id, the class and the frames; not the message.
    error_id = desc.removeprefix("Error inesperado en el procesamiento del servicio (id ")[:-1]
    err = logs.readouterr().err
    assert f"(RuntimeError, error id {error_id})" in err
    assert leaked not in err


# --- mutated example payloads: never a 500, always the contract's shape -----------------

ODD_VALUES: list[Any] = [
    None, "", "\u0000", "x" * 5000, 10**20, -1, 1.5, True, [], {}, "2022-13-40", "abc", 0,
    "  ", [1, {"a": None}], {"desc": None}, 1e308, "1e999",
]  # fmt: skip


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*path, i))
    return out


def _mutated(doc: Any, rnd: random.Random) -> Any:
    """The payload with one to three fields (at any depth) replaced by an odd value or
    removed."""
    doc = copy.deepcopy(doc)
    for _ in range(rnd.randint(1, 3)):
        paths = _paths(doc)
        if not paths:
            break
        path = rnd.choice(paths)
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rnd.random() < 0.1:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rnd.choice(ODD_VALUES))
    return doc


def test_mutated_payloads_never_fail_the_server(cm: Contract) -> None:
    rnd = random.Random(20261122)
    documents = [
        ("/v1/negotiations/profile", PROFILE_REQUEST),
        ("/v1/negotiations/policies", FIRST_CALL),
        (
            "/v1/negotiations/policies",
            {"creditAnalysis": [recalculation("PPPL", term=3.0, flags={"FLAG_NUEVO_PLAZO": "1"})]},
        ),
        ("/v1/negotiations", BM_PPPS),
        ("/v1/negotiations", OCR_PRERM),
    ]
    for path, document in documents:
        for _ in range(20):
            body = _mutated(document, rnd)
            response = cm.post(path, body)
            assert response.status_code < 500, (path, body, response.text)
            assert response.headers["content-type"] == "application/json"
            answer = response.json()
            if response.status_code >= 400:
                assert answer["responseType"] == {"value": "ER"}, answer
                assert set(answer["responseDetail"]) == {"errorCode", "errorDesc", "errorType"}


def test_another_routes_path_with_a_wrong_method_is_405(
    serve: Callable[[Callable[[FastAPI], None] | None], tuple[Server, Container]],
) -> None:
    """An operation another module adds under the prefix (before the catch-all) keeps
    its 405 for other methods, in the contract's shape."""

    def hook(app: FastAPI) -> None:
        @app.post("/collections-management/v1/other")
        def other() -> dict[str, str]:
            return {"ok": "yes"}

        app.router.routes.insert(0, app.router.routes.pop())

    server, _ = serve(hook)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post(f"{PREFIX}/v1/other").json() == {"ok": "yes"}
        assert_error(
            http.get(f"{PREFIX}/v1/other"),
            405,
            "10405",
            "Metodo GET no permitido en /collections-management/v1/other",
        )
        assert_error(
            http.get(f"{PREFIX}/v1/others"),
            404,
            "10404",
            "Recurso no existe: /collections-management/v1/others",
        )
