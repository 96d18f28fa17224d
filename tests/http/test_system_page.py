"""The operators' page (``GET /system``): served under its CSP, and drawn by a real Chromium."""

from __future__ import annotations

import html
import itertools
import os
import re
import shutil
from pathlib import Path

import pytest
import trio

from tests.http.conftest import Server
from tests.http.operators import CRASH, populate
from triotok.http._system_page import PAGE_CSP

CHROMIUM = "/usr/bin/chromium"
_profiles = itertools.count()


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """The page does not care about the backend: SQLite only."""
    return f"sqlite:///{tmp_path}/triotok.db"


async def test_page_and_assets_are_public_static_files(server: Server) -> None:
    with trio.fail_after(10):
        page = await server.client.get("/system")
        script = await server.client.get("/system/assets/system.js")
        style = await server.client.get("/system/assets/system.css")
        tree = await server.client.get("/system/tree")
    assert page.status_code == script.status_code == style.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert page.headers["X-Frame-Options"] == "DENY"
    # No inline code anywhere: the CSP allows this origin's files only.
    assert "'unsafe-inline'" not in PAGE_CSP
    assert "frame-ancestors 'none'" in PAGE_CSP
    assert re.search(r"<script(?![^>]*\bsrc=)", page.text) is None
    assert re.search(r"\son[a-z]+=", page.text) is None
    assert "innerHTML" not in script.text
    # The page holds no data: the tree itself still needs the key.
    assert tree.status_code == 401


# ------------------------------------------------------------------ a real browser


def chromium() -> str:
    """The browser, or a skip (a failure on CI, where .ci/run installs it)."""
    if Path(CHROMIUM).exists() or shutil.which("chromium"):
        return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing on CI (.ci/run installs the chromium package)")
    pytest.skip(
        f"!!! {CHROMIUM} is missing: the operators' page is NOT tested in a browser. "
        "Install it with `apt-get install -y chromium` (CI installs it)."
    )


async def browse(tmp_path: Path, url: str, *extra: str, budget_ms: int = 4000) -> str:
    """Load ``url`` in headless Chromium, let its timers run ``budget_ms``; the DOM (or a file)."""
    profile = tmp_path / f"chromium-{next(_profiles)}"  # a fresh profile: no stored key
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        *extra,
        url,
    ]
    with trio.fail_after(60):
        result = await trio.run_process(
            args, capture_stdout=True, capture_stderr=True, check=False, cwd=tmp_path
        )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


def nodes(dom: str) -> dict[str, str]:
    """``{path: state}`` of every drawn node."""
    return dict(re.findall(r'class="node[^"]*" data-path="([^"]+)" data-state="([^"]+)"', dom))


@pytest.mark.chromium
async def test_the_page_draws_the_live_tree(server: Server, tmp_path: Path) -> None:
    await populate(server)
    await server.services.plugins.enable("seo", who="test")
    key = await server.operator()
    await _rebuilt(server, key)
    dom = await browse(tmp_path, f"{server.url}/system#key={key}", "--dump-dom")
    drawn = nodes(dom)
    assert drawn == {
        "/app": "running",
        "/app/store": "running",
        "/app/transport": "running",
        "/app/transport/feed": "running",
        "/app/transport/bus": "running",
        "/app/transport/bus/sub-1-commerce": "running",
        "/app/transport/bus/sub-2-orders": "running",
        "/app/transport/bus/sub-3-orders": "running",
        # The search module's three subscriptions, in its consumer group.
        "/app/transport/bus/sub-4-search": "running",
        "/app/transport/bus/sub-5-search": "running",
        "/app/transport/bus/sub-6-search": "running",
        "/app/transport/bus/sub-7-plugin.seo": "running",
        "/app/transport/relay": "running",
        "/app/tenants": "running",
        "/app/access": "running",
        "/app/mode": "running",
        "/app/modules": "running",
        "/app/modules/idempotency": "running",
        "/app/modules/idempotency/sweeper": "running",
        "/app/modules/flags": "running",
        "/app/modules/flags/loader": "running",
        "/app/modules/content": "running",
        "/app/modules/content/nodes": "running",
        "/app/modules/commerce": "running",
        "/app/modules/commerce/products": "running",
        "/app/modules/commerce/on-1": "running",
        "/app/modules/orders": "running",
        "/app/modules/orders/payments": "running",
        "/app/modules/orders/orders": "running",
        "/app/modules/orders/on-1": "running",
        "/app/modules/orders/on-2": "running",
        "/app/modules/search": "running",
        "/app/modules/search/index": "running",
        "/app/modules/search/on-1": "running",
        "/app/modules/search/on-2": "running",
        "/app/modules/search/on-3": "running",
        "/app/plugins": "running",
        "/app/plugins/manager": "running",
        "/app/plugins/seo": "running",
        "/app/plugins/seo/host": "running",
        "/app/plugins/seo/on-1": "running",
        "/app/http": "running",
        "/app/payments": "running",
        "/app/crasher": "running",
    }
    assert '<span class="badge state-running">running</span>' in dom
    # populate()'s forced-open "gateway" breaker degrades the node: shown above the tree
    # with the reason, and on /app/mode's line.
    await server.wait_mode("degraded")
    dom = await browse(tmp_path, f"{server.url}/system#key={key}", "--dump-dom")
    assert re.search(r'<section id="mode"[^>]* data-mode="degraded"', dom)
    assert "breaker:/app/payments:gateway: breaker not closed" in dom
    assert "mode degraded" in dom
    assert "breaker gateway: forced_open" in dom
    assert "breaker payments: closed" in dom  # the orders module's payment gateway
    # The search index: its lag, and the last rebuild as a progress bar.
    assert re.search(r'<progress max="100" value="100"[^>]*>', dom)
    assert "100% 0/0 rows" in dom
    assert re.search(r"lag </span><span class=\"value\">0 events", dom)
    assert re.search(r'id="updated"[^>]*>last updated ', dom)
    assert 'id="login" hidden' in dom
    # The crash message is shown as text: escaped in the DOM, never an element.
    assert html.escape(f"ValueError: {CRASH}", quote=False) in dom
    assert "<img" not in dom
    assert "<title>TrioToK — supervision tree</title>" in dom
    # Restart/stop buttons for every actor but the root.
    assert 'data-action="restart" data-path="/app/tenants"' in dom
    assert 'data-action="stop" data-path="/app/crasher"' in dom
    assert 'data-path="/app" data-action' not in dom
    # The plugins, with their states and the actions each state allows.
    plugins = dict(re.findall(r'data-plugin="([^"]+)" data-plugin-state="([^"]+)"', dom))
    assert plugins == {"webhooks": "discovered", "seo": "running"}
    assert 'data-plugin-action="enable" data-plugin="webhooks"' in dom
    assert 'data-plugin-action="restart" data-plugin="seo"' in dom


async def _rebuilt(server: Server, key: str) -> None:
    """Run a (tiny) rebuild through the operators' route and wait until the tree shows it done."""
    with trio.fail_after(30):
        started = await server.client.post(
            "/api/search/rebuilds", json={"type": "product"}, headers=server.auth(key)
        )
        assert started.status_code == 202, started.text
        while True:
            tree = await server.client.get(
                "/system/tree",
                params={"prefix": "/app/modules/search/index"},
                headers=server.auth(key),
            )
            if tree.json()["components"]["rebuild"]["status"] == "done":
                return
            await trio.sleep(0.05)


@pytest.mark.chromium
async def test_without_a_valid_key_the_page_asks_for_one(server: Server, tmp_path: Path) -> None:
    anonymous = await browse(tmp_path, f"{server.url}/system", "--dump-dom", budget_ms=1000)
    viewer = await server.key("acme", "admin")  # an admin, but not of the operator tenant
    refused = await browse(tmp_path, f"{server.url}/system#key={viewer}", "--dump-dom")
    for dom in (anonymous, refused):
        assert re.search(r'<form id="login">', dom)
        assert nodes(dom) == {}
    assert "The key was refused (403" in refused


@pytest.mark.chromium
async def test_screenshot(server: Server, tmp_path: Path) -> None:
    """A PNG to look at while working on the page (``pytest --basetemp=DIR``: DIR/*/system.png)."""
    await populate(server)
    key = await server.operator()
    await _rebuilt(server, key)
    shot = tmp_path / "system.png"
    await browse(
        tmp_path,
        f"{server.url}/system#key={key}",
        f"--screenshot={shot}",
        "--window-size=1280,1100",
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000


@pytest.mark.chromium
async def test_the_page_shows_the_service_mode_and_why(server: Server, tmp_path: Path) -> None:
    key = await server.operator()
    with trio.fail_after(10):
        response = await server.client.post(
            "/system/mode",
            json={"mode": "read_only", "reason": "disk <replacement>", "expires_in": 600},
            headers=server.auth(key),
        )
    assert response.status_code == 200, response.text
    dom = await browse(tmp_path, f"{server.url}/system#key={key}", "--dump-dom")
    assert re.search(r'<section id="mode"[^>]* data-mode="read_only"', dom)
    assert '<span id="mode-name" class="mode-badge mode-read_only">read_only</span>' in dom
    # The operator's reason is text, escaped: never markup.
    assert "override: disk &lt;replacement&gt;" in dom
    assert "signals alone: full" in dom
    assert re.search(r"override by key:[0-9a-f]+ until 20\d\d-", dom)
    assert "mode read_only" in dom
