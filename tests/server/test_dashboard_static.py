"""The dashboard's files: served from the package with the right types, and nothing remote."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest
from fastapi import FastAPI
from tests.server.conftest import Served

import onionskin.server.dashboard as dashboard
from onionskin.core.errors import ConfigError
from onionskin.server.dashboard import CONTENT_SECURITY_POLICY, mount_dashboard

STATIC = Path(dashboard.__file__).parent / "static"
FILES = sorted(path.relative_to(STATIC).as_posix() for path in STATIC.rglob("*") if path.is_file())
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
LICENCE_BANNER = re.compile(r"/\*!.*?\*/", re.DOTALL)
"""`/*! ... */`: a minified library's kept licence comment, which names its home page."""
REMOTE = re.compile(
    r"(?:https?|wss?|ftp):/+|(?:src|href|action)\s*=\s*[\"']?//|@import|url\(\s*[\"']?//"
)


@pytest.fixture
async def page(served: Served) -> Served:
    mount_dashboard(served.app)
    return served


class _References(HTMLParser):
    """The `src` and `href` of every element of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in {"src", "href"} and value]


def test_the_package_holds_the_page_its_scripts_and_chart_js() -> None:
    assert {"index.html", "app.js", "style.css", "vendor/chart.umd.min.js"} <= set(FILES)
    assert (STATIC / "vendor/chart.js.LICENSE.md").read_text().startswith("The MIT License")


async def test_the_page_is_served_without_credentials_with_a_strict_policy(page: Served) -> None:
    response = await page.client.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == (STATIC / "index.html").read_bytes()
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.split(" ", 1) for part in CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == policy["connect-src"] == "'self'"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", FILES)
async def test_every_static_file_is_served_with_its_content_type(page: Served, name: str) -> None:
    response = await page.client.get(f"/dashboard/static/{name}")

    assert response.status_code == 200
    assert response.headers["content-type"] == TYPES[Path(name).suffix]
    assert response.content == (STATIC / name).read_bytes()


@pytest.mark.parametrize("name", FILES)
def test_no_file_references_a_remote_url(name: str) -> None:
    """No CDN, no remote font or stylesheet: the dashboard must work offline."""
    text = (STATIC / name).read_text(encoding="utf-8")
    if name.startswith("vendor/") and name.endswith(".js"):
        text = LICENCE_BANNER.sub("", text)

    assert REMOTE.findall(text) == []


def test_the_remote_url_check_catches_what_it_is_for() -> None:
    for remote in (
        '<script src="https://cdn.jsdelivr.net/npm/chart.js"></script>',
        '<link href="//fonts.example/x.css">',
        "new WebSocket('ws://localhost:8765')",
        "body { background: url(//images.example/x.png) }",
    ):
        assert REMOTE.search(remote), remote


async def test_what_the_page_and_its_modules_load_is_served(page: Served) -> None:
    references = _References()
    references.feed((STATIC / "index.html").read_text(encoding="utf-8"))
    imports = [
        f"dashboard/static/{module}"
        for path in STATIC.glob("*.js")
        for module in re.findall(r'from "\./([\w./-]+)"', path.read_text(encoding="utf-8"))
    ]

    assert len(references.found) == 3  # the stylesheet, Chart.js and app.js
    assert "dashboard/static/charts.js" in imports
    for reference in references.found + imports:
        # Relative to /dashboard, as the browser resolves them.
        response = await page.client.get(f"/{reference}")
        assert response.status_code == 200, reference


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/nope.js",
        "/dashboard/static/vendor",
        "/dashboard/static/%2e%2e/__init__.py",
        "/dashboard/static/..%2f__init__.py",
        "/dashboard/static//etc/passwd",
        "/dashboard/static/",
    ],
)
async def test_unknown_files_and_path_tricks_are_404(page: Served, path: str) -> None:
    response = await page.client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "root:" not in response.text


async def test_an_unchanged_file_is_revalidated_with_its_etag(page: Served) -> None:
    first = await page.client.get("/dashboard/static/app.js")
    again = await page.client.get(
        "/dashboard/static/app.js", headers={"If-None-Match": first.headers["etag"]}
    )
    other = await page.client.get(
        "/dashboard/static/style.css", headers={"If-None-Match": first.headers["etag"]}
    )

    assert first.headers["cache-control"] == "no-cache"
    assert again.status_code == 304
    assert again.content == b""
    assert other.status_code == 200


async def test_the_page_stays_out_of_the_api_and_its_document(page: Served) -> None:
    document = (await page.client.get("/openapi.json")).json()
    api = await page.client.get("/api/v1/runs")

    assert not [path for path in document["paths"] if path.startswith("/dashboard")]
    assert api.status_code == 401  # serving the page opens nothing of the API


def test_a_package_without_its_files_refuses_to_mount(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.js").write_text("")

    def files(package: str) -> Traversable:
        return tmp_path

    monkeypatch.setattr(dashboard, "files", files)
    app = FastAPI()
    before = list(app.router.routes)

    with pytest.raises(ConfigError, match=r"index\.html.*reinstall onionskin"):
        mount_dashboard(app)
    assert app.router.routes == before
