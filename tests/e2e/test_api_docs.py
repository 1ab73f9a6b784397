"""The API docs page works with no Internet access: its assets come from the server."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import Api


def test_docs_page_and_its_assets_are_served_locally(api: Api) -> None:
    with httpx.Client(base_url=api.url) as bare:
        page = bare.get("/api/docs")
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
        assert "/api/docs-assets/swagger-ui-bundle.js" in assets
        assert "/api/docs-assets/swagger-ui.css" in assets
        assert not [a for a in assets if a.startswith(("http://", "https://", "//"))]
        script = bare.get("/api/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        spec = bare.get("/api/openapi.json")
        assert spec.json()["info"]["title"] == "Recaudo admin API"
        assert bare.get("/", follow_redirects=False).headers["location"] == "/ingresar"
