"""The API's docs work with no internet (Swagger UI and ReDoc from fastapi-offline's
files), and ``/`` says where everything is (api/routes/home.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.asgi import TestClient

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def root(client: TestClient) -> Iterator[TestClient]:
    """The app of ``client``, addressed from its root rather than from ``/api/v1``."""
    with TestClient(client.app, base_url="http://testserver") as at_root:
        yield at_root


def referenced_urls(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_files_of_this_server(root: TestClient, page: str) -> None:
    answer = root.get(page)

    assert answer.status_code == 200, answer.text
    urls = referenced_urls(answer.text)
    assert any(url.endswith(".js") for url in urls), urls
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert "http://" not in answer.text
    assert "https://" not in answer.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_every_file_a_docs_page_loads_answers_with_its_type(root: TestClient, page: str) -> None:
    urls = referenced_urls(root.get(page).text)
    assets = [url for url in urls if url.rsplit(".", 1)[-1] in ("js", "css", "png")]
    assert assets, urls

    for url in assets:
        answer = root.get(url)
        assert answer.status_code == 200, url
        kind = ASSET_TYPES["." + url.rsplit(".", 1)[-1]]
        assert answer.headers["content-type"].startswith(kind), (url, answer.headers)
        assert len(answer.content) > 1000, url


def test_swagger_ui_reads_this_servers_openapi_document(root: TestClient) -> None:
    text = root.get("/docs").text

    assert "url: '/api/v1/openapi.json'" in text
    assert root.get("/api/v1/openapi.json").status_code == 200


def test_redoc_reads_this_servers_openapi_document(root: TestClient) -> None:
    assert 'spec-url="/api/v1/openapi.json"' in root.get("/redoc").text


def test_every_component_of_the_openapi_document_has_its_models_own_name(
    client: TestClient,
) -> None:
    """Two models of one name in two modules come out as ``schemas__registry__PersonBrief``
    and the like, names generated clients are stuck with; each model has a name of its own."""
    components = client.get("/openapi.json").json()["components"]["schemas"]

    assert [name for name in components if "__" in name] == []


def test_behind_a_proxy_prefix_the_docs_load_their_files_under_it(client: TestClient) -> None:
    with TestClient(client.app, root_path="/fieldsync") as prefixed:
        text = prefixed.get("/docs").text

    assert '"/fieldsync/docs/assets/swagger-ui-bundle.js"' in text
    assert "url: '/fieldsync/api/v1/openapi.json'" in text


def test_the_root_page_links_to_the_docs_the_openapi_document_and_health(
    root: TestClient,
) -> None:
    answer = root.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="es">' in answer.text
    links = re.findall(r'href="([^"]+)"', answer.text)
    assert links == ["/docs", "/redoc", "/api/v1/openapi.json", "/healthz", "/readyz"]
    for link in links:
        assert root.get(link).status_code == 200, link


def test_the_root_page_reads_in_spanish_first(root: TestClient) -> None:
    text = root.get("/").text

    assert text.index("Documentación de la API") < text.index("API docs")
    assert text.index("Sincronización") < text.index("Sync for")


@pytest.mark.parametrize("accept", ["application/json", "application/json, text/html;q=0.5"])
def test_the_root_answers_json_to_who_asks_for_it(root: TestClient, accept: str) -> None:
    answer = root.get("/", headers={"Accept": accept})

    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["name"] == "fieldsync"
    assert {name: link["href"] for name, link in body["links"].items()} == {
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/api/v1/openapi.json",
        "healthz": "/healthz",
        "readyz": "/readyz",
    }


@pytest.mark.parametrize("accept", ["*/*", "", "text/html, application/json;q=0.9"])
def test_the_root_is_a_page_unless_json_is_preferred(root: TestClient, accept: str) -> None:
    answer = root.get("/", headers={"Accept": accept})

    assert answer.headers["content-type"].startswith("text/html")
