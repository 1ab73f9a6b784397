"""Company holidays through the real HTTP server, on both backends."""

from __future__ import annotations

from tests.e2e.conftest import Api, assert_problem


def test_national_and_company_holidays(api: Api) -> None:
    admin = api.client("acme_admin")
    national = admin.get("/holidays", params={"year": 2026})
    assert national.status_code == 200
    rows = national.json()
    assert ("2026-09-18", "national") in [(r["day"], r["source"]) for r in rows]
    assert all(r["source"] == "national" for r in rows)
    assert [r["day"] for r in rows] == sorted(r["day"] for r in rows)

    added = api.client("acme_operator").post(
        "/holidays", json={"day": "2026-06-29", "name": "  Aniversario   de la empresa "}
    )
    assert added.status_code == 201, added.text
    assert added.json() == {
        "day": "2026-06-29",
        "name": "Aniversario de la empresa",
        "source": "company",
    }
    after = admin.get("/holidays", params={"year": 2026}).json()
    assert [r for r in after if r["source"] == "company"] == [added.json()]
    assert len(after) == len(rows) + 1
    # Default year: the clock's (2026 in the tests).
    assert admin.get("/holidays").json() == after
    assert admin.get("/holidays", params={"year": 2027}).json() != after

    # Beta has its own calendar.
    beta = api.client("beta_admin").get("/holidays", params={"year": 2026}).json()
    assert beta == rows

    assert_problem(
        admin.post("/holidays", json={"day": "2026-06-29", "name": "Otra"}),
        409,
        "conflict",
        "2026-06-29 is already a holiday of this company",
    )
    assert_problem(
        api.client("beta_admin").delete("/holidays/2026-06-29"),
        404,
        "not_found",
        "2026-06-29 is not a holiday of this company",
    )
    assert_problem(
        admin.delete("/holidays/2026-09-18"),
        404,
        "not_found",
        "2026-09-18 is not a holiday of this company",
    )
    removed = admin.delete("/holidays/2026-06-29")
    assert removed.status_code == 204
    assert removed.content == b""
    assert admin.get("/holidays", params={"year": 2026}).json() == rows


def test_auditor_reads_only(api: Api) -> None:
    auditor = api.client("acme_auditor")
    assert auditor.get("/holidays").status_code == 200
    assert_problem(
        auditor.post("/holidays", json={"day": "2026-06-29", "name": "X"}), 403, "permission_denied"
    )
    assert_problem(auditor.delete("/holidays/2026-06-29"), 403, "permission_denied")


def test_bad_input(api: Api) -> None:
    admin = api.client("acme_admin")
    for body, field in [
        ({"day": "29-06-2026", "name": "X"}, "day"),
        ({"day": "2026-06-29", "name": ""}, "name"),
        ({"day": "2026-06-29", "name": "x" * 101}, "name"),
        ({"day": "2026-06-29", "name": "X", "extra": 1}, "extra"),
    ]:
        problem = assert_problem(admin.post("/holidays", json=body), 422, "invalid_request")
        assert [e["field"] for e in problem["errors"]] == [field]
    problem = assert_problem(
        admin.post("/holidays", json={"day": "2026-06-29", "name": "   "}), 422, "validation_failed"
    )
    problem = assert_problem(
        admin.post("/holidays", json={"day": "1900-01-01", "name": "X"}),
        422,
        "validation_failed",
        "a holiday must be in 1970 to 2100",
    )
    assert_problem(admin.get("/holidays", params={"year": 1969}), 422, "invalid_request")
    assert_problem(admin.delete("/holidays/yesterday"), 422, "invalid_request")
