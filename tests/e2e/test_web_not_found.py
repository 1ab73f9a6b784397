"""A URL that does not exist: a Spanish page for a browser, a problem for API clients."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import Api

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_browser_gets_the_back_offices_not_found_page(api: Api) -> None:
    with httpx.Client(base_url=api.url) as client:
        page = client.get("/no-existe", headers=BROWSER)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "No encontrado" in page.text
        assert "La página que busca no existe." in page.text

        wrong_method = client.delete("/ingresar", headers=BROWSER)
        assert wrong_method.status_code == 405
        assert "Acción no permitida" in wrong_method.text


def test_machines_keep_their_json(api: Api) -> None:
    with httpx.Client(base_url=api.url) as client:
        plain = client.get("/no-existe")
        assert plain.status_code == 404
        assert plain.headers["content-type"] == "application/problem+json"
        assert plain.json()["detail"] == "no resource at /no-existe"

        api_path = client.get("/api/v1/no-such-thing", headers=BROWSER)
        assert api_path.status_code == 404
        assert api_path.headers["content-type"] == "application/problem+json"
