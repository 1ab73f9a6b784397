"""ISO 20022 reason codes of SEPA returns, with their Spanish descriptions.

Package data (sources in SOURCES.md next to this file):

- `external_status_reason_code.json`: ISO ExternalStatusReason1Code (pain.002
  StsRsnInf/Rsn/Cd), code → English definition;
- `external_return_reason_code.json`: ISO ExternalReturnReason1Code (camt.05x
  RtrInf/Rsn/Cd), code → English definition;
- `payment.return.reason.csv`: the same codes as Odoo's SEPA return importer names them;
- `descriptions_es.json`: Spanish descriptions WRITTEN BY HAND for Recaudo, because the
  ISO lists are English only. They cover the codes SEPA R-transactions use (the AEB
  Cuaderno 19.14 list: AC01, AC04, AC06, AG01, AG02, AM04, AM05, BE01, BE05, FF01, MD01,
  MD02, MD06, MD07, MS02, MS03, RC01, RR01-RR04, SL01; and AC13, CNOR, DNOR, FOCR, DUPL,
  TECH, FRAD, CUST... of later EPC rulebooks) and the common status codes. Any other code
  falls back to its English ISO name; a code in no list gets a Spanish "unknown code" text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

from recaudo.domain.sepa_returns import normalize_reason_code

__all__ = ["english_name", "known_codes", "reason_description", "spanish_description"]


def _read(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def _json_codes(name: str) -> dict[str, str]:
    document = json.loads(_read(name))
    return {str(k).strip().upper(): str(v).strip() for k, v in document["codes"].items()}


@cache
def _spanish() -> Mapping[str, str]:
    return MappingProxyType(_json_codes("descriptions_es.json"))


@cache
def _english() -> Mapping[str, str]:
    # Later lists win: the return list (what SDD returns carry) over the status list,
    # both over Odoo's names (which only fill codes the ISO lists leave out).
    names: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(_read("payment.return.reason.csv"))):
        code = (row.get("code") or "").strip().upper()
        name = (row.get("name") or "").strip()
        if code and name:
            names[code] = name
    names.update(_json_codes("external_status_reason_code.json"))
    names.update(_json_codes("external_return_reason_code.json"))
    return MappingProxyType(names)


def known_codes() -> frozenset[str]:
    """Every code of the ISO lists and of the Spanish descriptions."""
    return frozenset(_english()) | frozenset(_spanish())


def english_name(code: str) -> str | None:
    """The ISO English definition of a code, or None when no list has it."""
    normalized = normalize_reason_code(code)
    return None if normalized is None else _english().get(normalized)


def spanish_description(code: str) -> str | None:
    """The hand-written Spanish description of a code, or None when there is none."""
    normalized = normalize_reason_code(code)
    return None if normalized is None else _spanish().get(normalized)


def reason_description(code: str) -> str:
    """What a reason code means, for the back office: Spanish when Recaudo has it, else the
    English ISO name, else a Spanish "unknown code" text naming the code."""
    normalized = normalize_reason_code(code)
    if normalized is None:
        return "Sin código de motivo"
    spanish = _spanish().get(normalized)
    if spanish is not None:
        return spanish
    english = _english().get(normalized)
    if english is not None:
        return english
    return f"Código de motivo {normalized} desconocido (no figura en las listas ISO 20022)"
