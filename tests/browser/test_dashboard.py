"""The dashboard in a real browser: sign in, run pipelines, watch it update over the WebSocket.

Everything the page shows live is checked against what the API answered: the token chart
holds one point per model call of the runs, the tool chart counts their tool calls, the run
list shows their statuses, the cost lists show /costs' exact strings. The page loads
nothing from outside the server, and another tenant sees none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import (
    APIRequestContext,
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Route,
    WebSocket,
    expect,
)

from tests.browser.conftest import (
    ACME_BUDGET,
    ACME_KEY,
    ARTIFACTS,
    GLOBEX_KEY,
    LiveServer,
    token,
)

TIMEOUT_MS = 10_000
"""How long a wait for the page may take before the test fails (not a timing assertion)."""


@dataclass
class Watched:
    """A page and what it did: requests, WebSocket frames received, errors."""

    page: Page
    requests: list[Request] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    """The URL of every WebSocket the page opened."""

    def events(self) -> list[dict[str, Any]]:
        """Every analytics event the WebSocket delivered."""
        return [event for frame in self.frames for event in frame]


def watch(context: BrowserContext, server: LiveServer) -> Watched:
    """A new page of `context` whose requests, frames and errors are recorded."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watched = Watched(page)

    def route(route: Route) -> None:
        # Offline by construction: anything not for our server is refused and recorded.
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:
            watched.remote.append(route.request.url)
            route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            watched.errors.append(message.text)

    def socket(ws: WebSocket) -> None:
        watched.sockets.append(ws.url)
        ws.on("framereceived", lambda payload: watched.frames.append(json.loads(payload)))

    page.route("**/*", route)
    page.on("request", lambda request: watched.requests.append(request))
    page.on("console", console)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("websocket", socket)
    return watched


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context(viewport={"width": 1400, "height": 1500})
    try:
        yield fresh
    finally:
        fresh.close()


@pytest.fixture
def api(playwright: Playwright, live_server: LiveServer) -> Iterator[APIRequestContext]:
    """HTTP calls from outside the page (another client of the same tenant)."""
    client = playwright.request.new_context(base_url=live_server.url)
    try:
        yield client
    finally:
        client.dispose()


def call(
    api: APIRequestContext, key: str, method: str, path: str, body: Any = None
) -> dict[str, Any]:
    response = api.fetch(f"/api/v1{path}", method=method, headers={"X-API-Key": key}, data=body)
    assert response.ok, f"{method} {path}: {response.status} {response.text()}"
    answer: dict[str, Any] = response.json()
    return answer


def shown(page: Page, selector: str) -> None:
    """Wait until an element matches `selector` (checked on every change of the page)."""
    page.wait_for_selector(selector, state="attached")


def sign_in(watched: Watched, server: LiveServer, key: str, method: str = "api_key") -> Page:
    page = watched.page
    page.goto(f"{server.url}/dashboard")
    page.get_by_test_id("login-method").select_option(method)
    page.get_by_test_id("login-secret").fill(key)
    page.get_by_test_id("login-submit").click()
    shown(page, '[data-testid="ws-status"][data-state="live"]')
    shown(page, '[data-testid="runs"][data-loaded="true"]')
    return page


def chart(page: Page, name: str) -> dict[str, list[Any]]:
    """The labels and first dataset of the Chart.js chart on canvas `chart-<name>`."""
    found: dict[str, list[Any]] = page.evaluate(
        """id => {
            const chart = Chart.getChart(id);
            return {labels: chart.data.labels, data: chart.data.datasets[0].data};
        }""",
        f"chart-{name}",
    )
    return found


def wait_for_points(page: Page, name: str, count: int) -> None:
    page.wait_for_function(
        "([id, n]) => (Chart.getChart(id)?.data.datasets[0].data.length ?? 0) >= n",
        arg=[f"chart-{name}", count],
    )


def row(page: Page, run_id: str, status: str = "completed") -> None:
    """Wait until the run list shows `run_id` with `status`."""
    shown(page, f'[data-testid="run-row"][data-run-id="{run_id}"][data-status="{status}"]')


def amounts(page: Page, testid: str) -> dict[str, str]:
    terms = page.get_by_test_id(testid).locator("dt").all_inner_texts()
    values = page.get_by_test_id(testid).locator("dd").all_inner_texts()
    return dict(zip(terms, values, strict=True))


def run_from_page(page: Page, pipeline: str, text: str) -> str:
    page.get_by_test_id("run-pipeline").fill(pipeline)
    page.get_by_test_id("run-input").fill(text)
    page.get_by_test_id("run-submit").click()
    run_id = page.get_by_test_id("run-result-id").inner_text()
    assert run_id
    return run_id


def test_a_tenant_watches_runs_live_then_replays_and_forks_one(
    context: BrowserContext, api: APIRequestContext, live_server: LiveServer
) -> None:
    watched = watch(context, live_server)
    page = sign_in(watched, live_server, ACME_KEY)

    from_page = run_from_page(page, "research", "onions")
    from_http = call(api, ACME_KEY, "POST", "/pipelines/research/execute", {"input": "leeks"})
    row(page, from_page)
    row(page, from_http["run_id"])

    # Three model calls per run (the assistant's tool call and answer, then echo's).
    wait_for_points(page, "tokens", 6)
    tokens = chart(page, "tokens")
    listed = call(api, ACME_KEY, "GET", "/runs?limit=50")["runs"]
    assert {run["run_id"] for run in listed} >= {from_page, from_http["run_id"]}
    assert len(tokens["data"]) == 6
    answered = page.get_by_test_id("run-result").inner_text()
    page_tokens = int(answered.split(" completed: ")[1].split(" tokens")[0])
    assert sum(tokens["data"]) == page_tokens + from_http["usage"]["total_tokens"]
    page.wait_for_function("() => Chart.getChart('chart-tools').data.datasets[0].data[0] >= 2")
    assert chart(page, "tools") == {"labels": ["lookup"], "data": [2]}
    delivered = {event["run_id"] for event in watched.events()}
    assert from_http["run_id"] in delivered  # learnt over the WebSocket, not by reloading
    # The key went as a subprotocol: URLs reach access logs and the browser's history.
    assert watched.sockets
    assert not [url for url in watched.sockets if ACME_KEY in url or "api_key" in url]

    period = datetime.now(UTC).strftime("%Y-%m")  # the page's default period
    costs = call(api, ACME_KEY, "GET", f"/costs?period={period}")
    expect(page.get_by_test_id("cost-total")).to_contain_text(f"${costs['total_usd']}")
    assert amounts(page, "cost-by-agent") == {k: f"${v}" for k, v in costs["by_agent"].items()}
    assert amounts(page, "cost-by-model") == {k: f"${v}" for k, v in costs["by_model"].items()}
    assert set(chart(page, "cost-agent")["labels"]) == {"assistant", "echo"}
    budget = call(api, ACME_KEY, "GET", f"/budget?period={period}")
    assert Decimal(budget["limit_usd"]) == Decimal(ACME_BUDGET)
    expect(page.get_by_test_id("budget-text")).to_have_text(
        f"${budget['spent_usd']} of ${budget['limit_usd']} ({budget['utilization_pct']:.1f}%)"
    )
    gauge = chart(page, "budget")["data"]
    assert gauge == [float(budget["spent_usd"]), float(budget["remaining_usd"])]

    # The run view: the run's checkpoints as a timeline, a step inspected, then replayed.
    page.locator(f'[data-testid="run-row"][data-run-id="{from_page}"]').click()
    checkpoints = call(api, ACME_KEY, "GET", f"/runs/{from_page}/checkpoints")["checkpoints"]
    steps = page.get_by_test_id("step")
    expect(steps).to_have_count(len(checkpoints))
    steps.first.click()
    state = json.loads(page.get_by_test_id("inspect-state").inner_text())
    assert state == checkpoints[0]["state"]
    expect(page.get_by_test_id("inspect-messages").get_by_test_id("message")).to_have_count(
        len(checkpoints[0]["messages"])
    )
    page.get_by_test_id("replay").click()
    replayed = page.get_by_test_id("replay-run-id").inner_text()
    assert replayed not in {from_page, from_http["run_id"]}
    row(page, replayed)

    # A fork's state must be a JSON object: anything else is refused before any request.
    page.get_by_test_id("fork-open").click()
    page.get_by_test_id("fork-state").fill("{not json")
    page.get_by_test_id("fork-submit").click()
    expect(page.get_by_test_id("replay-error")).to_contain_text("not valid JSON")
    page.get_by_test_id("fork-state").fill("[1, 2]")
    page.get_by_test_id("fork-submit").click()
    expect(page.get_by_test_id("replay-error")).to_contain_text("must be a JSON object")
    replays = [r for r in watched.requests if r.url.endswith("/replay")]
    assert len(replays) == 1
    page.get_by_test_id("fork-state").fill('{"topic": "forked"}')
    page.get_by_test_id("fork-submit").click()
    forked = page.get_by_test_id("replay-run-id").inner_text()
    assert page.get_by_test_id("replay-result").inner_text().startswith("Forked as run")
    row(page, forked)
    sent = [r.post_data_json for r in watched.requests if r.url.endswith("/replay")]
    assert sent[-1] == {
        "checkpoint_id": checkpoints[0]["checkpoint_id"],
        "state": {"topic": "forked"},
    }

    # After a run ends the page asks GET /runs for what events do not say (its checkpoints).
    forked_checkpoints = call(api, ACME_KEY, "GET", f"/runs/{forked}")["checkpoints"]
    shown(page, f'[data-run-id="{forked}"][data-checkpoints="{forked_checkpoints}"]')

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert watched.remote == []
    assert watched.errors == []


def test_another_tenant_sees_none_of_the_first_tenants_runs(
    browser: Browser, api: APIRequestContext, live_server: LiveServer
) -> None:
    acme_context = browser.new_context()
    globex_context = browser.new_context()
    try:
        acme = sign_in(watch(acme_context, live_server), live_server, ACME_KEY)
        watched = watch(globex_context, live_server)
        globex = sign_in(watched, live_server, token("globex"), method="token")
        expect(globex.get_by_test_id("runs-empty")).to_be_visible()
        acme_run = run_from_page(acme, "research", "secret plans")
        globex_run = call(api, GLOBEX_KEY, "POST", "/pipelines/echo/execute", {"input": "hi"})

        row(globex, globex_run["run_id"])
        row(acme, acme_run)
        wait_for_points(globex, "tokens", 1)
        rows = globex.get_by_test_id("run-row")
        assert [r.get_attribute("data-run-id") for r in rows.all()] == [globex_run["run_id"]]
        assert len(chart(globex, "tokens")["data"]) == 1  # echo's one model call, not acme's
        assert chart(globex, "tools")["data"] == []
        assert {event["tenant_id"] for event in watched.events()} == {"globex"}
        assert acme_run not in globex.content()
        assert "secret plans" not in globex.content()
        expect(globex.get_by_test_id("who")).to_have_text("organization globex")
        expect(globex.get_by_test_id("budget-text")).to_contain_text("no limit set")
    finally:
        acme_context.close()
        globex_context.close()


def test_refused_credentials_keep_nothing_and_signing_out_forgets_them(
    context: BrowserContext, live_server: LiveServer
) -> None:
    watched = watch(context, live_server)
    page = watched.page
    page.goto(f"{live_server.url}/dashboard")
    page.get_by_test_id("login-secret").fill("not-a-key-of-anyone-0123")
    page.get_by_test_id("login-submit").click()

    expect(page.get_by_test_id("login-error")).to_contain_text("refused")
    expect(page.get_by_test_id("dashboard")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert watched.frames == []

    page.get_by_test_id("login-secret").fill(ACME_KEY)
    page.get_by_test_id("login-submit").click()
    shown(page, '[data-testid="ws-status"][data-state="live"]')
    assert page.evaluate("() => sessionStorage.length") == 1
    page.reload()  # the tab keeps its credentials
    shown(page, '[data-testid="ws-status"][data-state="live"]')
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-form")).to_be_visible()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert watched.errors == []


def test_insecure_local_mode_signs_in_from_the_address_and_shows_text_as_text(
    context: BrowserContext, local_server: LiveServer
) -> None:
    """`?org_id=` signs in without credentials; a run's markup is shown, never interpreted."""
    watched = watch(context, local_server)
    page = watched.page
    page.goto(f"{local_server.url}/dashboard?org_id=acme")
    shown(page, '[data-testid="ws-status"][data-state="live"]')
    stored = page.evaluate("() => JSON.parse(Object.values({...sessionStorage})[0])")
    assert stored == {"method": "org_id", "value": "acme"}
    expect(page.get_by_test_id("who")).to_have_text("organization acme")

    markup = '<img data-testid="injected" src="x">'
    run_id = run_from_page(page, "echo", markup)
    expect(page.get_by_test_id("run-result-output")).to_have_text(f"echo: {markup}")
    row(page, run_id)
    page.locator(f'[data-testid="run-row"][data-run-id="{run_id}"]').click()
    page.get_by_test_id("step").filter(has_text="model").first.click()
    expect(page.get_by_test_id("inspect-messages")).to_contain_text(markup)
    assert page.get_by_test_id("injected").count() == 0
    assert {event["tenant_id"] for event in watched.events()} == {"acme"}
    assert watched.errors == []
