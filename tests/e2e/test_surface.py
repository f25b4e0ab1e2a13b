"""The public surface: OpenAPI 3.1 and its browsable UI, and the health probes."""

from __future__ import annotations

import httpx


async def test_openapi_document_is_3_1_and_lists_the_routes(client: httpx.AsyncClient) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/organisations" in document["paths"]
    assert "/health/ready" in document["paths"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


async def test_browsable_docs_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/schema", "/schema/swagger"):
        response = await client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert "text/html" in response.headers["content-type"]


async def test_liveness(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.json() == {"status": "ok"}


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}
