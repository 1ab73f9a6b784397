"""Pagination: totals, pages, bounds of page_size, and the Link header."""

from __future__ import annotations

from datetime import date

import pytest
from stdnum.cl import rut

from tests.e2e.conftest import Api, assert_problem


def _ruts(n: int) -> list[str]:
    bodies = [str(10_000_000 + i) for i in range(n)]
    return [f"{b}-{rut.calc_check_digit(b)}" for b in bodies]


@pytest.fixture
def many(api: Api) -> list[int]:
    """7 customers of Acme, named Cliente 1..7; one debt each, due on consecutive days."""
    ids = []
    for i, national_id in enumerate(_ruts(7), start=1):
        customer = api.customer(api.acme, national_id, f"Cliente {i}")
        api.debt(api.acme, customer, f"D-{i}", str(1000 * i), date(2026, 1, i))
        ids.append(customer.id)
    return ids


def test_pages_and_totals(api: Api, many: list[int]) -> None:
    client = api.client()
    first = client.get("/customers", params={"page_size": 3})
    assert first.status_code == 200
    body = first.json()
    assert (body["total"], body["page"], body["page_size"]) == (7, 1, 3)
    assert [c["name"] for c in body["items"]] == ["Cliente 1", "Cliente 2", "Cliente 3"]
    base = f"{api.url}/api/v1/customers"
    assert first.headers["link"] == f'<{base}?page_size=3&page=2>; rel="next"'

    second = client.get("/customers", params={"page_size": 3, "page": 2})
    assert [c["name"] for c in second.json()["items"]] == ["Cliente 4", "Cliente 5", "Cliente 6"]
    assert second.headers["link"] == (
        f'<{base}?page_size=3&page=3>; rel="next", <{base}?page_size=3&page=1>; rel="prev"'
    )
    last = client.get("/customers", params={"page_size": 3, "page": 3})
    assert [c["name"] for c in last.json()["items"]] == ["Cliente 7"]
    assert last.headers["link"] == f'<{base}?page_size=3&page=2>; rel="prev"'

    beyond = client.get("/customers", params={"page_size": 3, "page": 9}).json()
    assert beyond == {"items": [], "total": 7, "page": 9, "page_size": 3}

    everything = client.get("/customers", params={"page_size": 500})
    assert len(everything.json()["items"]) == 7
    assert "link" not in everything.headers

    # Filters keep their parameters in the links.
    debts = client.get("/debts", params={"status": "open", "page_size": 2, "page": 2})
    assert [d["debt_id"] for d in debts.json()["items"]] == ["D-3", "D-4"]
    assert debts.headers["link"] == (
        f'<{api.url}/api/v1/debts?status=open&page_size=2&page=3>; rel="next", '
        f'<{api.url}/api/v1/debts?status=open&page_size=2&page=1>; rel="prev"'
    )
    search = client.get("/customers", params={"q": "cliente 7"}).json()
    assert [c["name"] for c in search["items"]] == ["Cliente 7"]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"page_size": 0}, "page_size", "greater than or equal to 1"),
        ({"page_size": 501}, "page_size", "less than or equal to 500"),
        ({"page": 0}, "page", "greater than or equal to 1"),
        ({"page": "two"}, "page", "valid integer"),
    ],
)
def test_page_bounds(api: Api, params: dict[str, object], field: str, message: str) -> None:
    body = assert_problem(api.client().get("/payments", params=params), 422, "invalid_request")
    assert [e["field"] for e in body["errors"]] == [field]
    assert message in body["errors"][0]["message"]
