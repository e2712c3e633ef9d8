"""The web app in a real headless Chromium against the real stack.

The app is built from web/ the way `./dev up` builds it (devstack/webapp.py), served by
a real bridge (uvicorn on an ephemeral port) in front of the real services, dynalite
and Redis of tests/e2e. The browser is Debian's /usr/bin/chromium driven by Playwright
(nothing downloads a browser); each test gets a fresh browser context (no cookies, no
storage). Screenshots land in web/test-results/screenshots/ (WEB_ARTIFACTS overrides).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from devstack.engines import ROOT
from devstack.webapp import ensure_web_build
from tests.e2e.conftest import (  # noqa: F401 - fixtures
    Bridge,
    bridge_settings,
    new_registration,
    stack,
    start_session_bridge,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The flags the project's CI settled on for a sandbox without a GPU or network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("WEB_ARTIFACTS", ROOT / "web" / "test-results"))
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
PASSWORD = "Correct-Horse-42!"
# Collects Content-Security-Policy violations from the first script that runs.
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI || 'inline'} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture(scope="session")
def web_dist() -> Path:
    return ensure_web_build(say=lambda _line: None)


@pytest.fixture(scope="session")
def web(start_session_bridge: Callable[..., Bridge], web_dist: Path) -> Bridge:  # noqa: F811
    return start_session_bridge(web_dist_dir=web_dist)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: ./dev test installs Debian's chromium (apt-get)")
    profile = tempfile.mkdtemp(prefix="web-chromium-")
    # A fresh profile for the run; Playwright gives every context its own storage too.
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_FLAGS, f"--disk-cache-dir={profile}/cache"],
    )
    yield chromium
    chromium.close()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def context(browser: Browser, web: Bridge) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=web.url, viewport=DESKTOP, locale="en-US")
    ctx.add_init_script(CSP_PROBE)
    ctx.set_default_timeout(20_000)
    expect.set_options(timeout=20_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    assert errors == [], f"uncaught errors in the page: {errors}"
    assert tab.evaluate("window.__cspViolations || []") == [], "CSP violations"


@dataclass
class Trader:
    username: str
    password: str


def api_trader(
    web: Bridge, deposit: str | None = None, buys: dict[str, str] | None = None
) -> Trader:
    """A trader made through the API (for pages that need one with history)."""
    body = new_registration()
    with web.client() as http:
        assert http.post("/api/v1/auth/register", json=body).status_code == 201
        login = http.post(
            "/api/v1/auth/login", json={"username": body["username"], "password": body["password"]}
        )
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        if deposit:
            answer = http.post("/api/v1/balance/deposit", json={"amount": deposit}, headers=auth)
            assert answer.status_code == 201, answer.text
        for asset, quantity in (buys or {}).items():
            order = {"order_type": "market_buy", "asset_id": asset, "quantity": quantity}
            answer = http.post("/api/v1/orders", json=order, headers=auth)
            assert answer.status_code == 201, answer.text
    return Trader(body["username"], body["password"])


def sign_in(page: Page, trader: Trader, then: str = "/portfolio") -> None:
    page.goto(f"/signin?next={then}")
    page.get_by_label("Username").fill(trader.username)
    page.get_by_label("Password", exact=True).fill(trader.password)
    page.get_by_role("form", name="Sign in").get_by_role("button", name="Sign in").click()
    # Anchored at the origin: "/signin?next=/portfolio" also ends with "/portfolio", and
    # a test that went on from there raced the sign-in it had just started.
    expect(page).to_have_url(re.compile(r"^https?://[^/?#]+" + re.escape(then) + "$"))


def money(text: str) -> str:
    """'$1,234.50' -> '1234.50' (en-US formatting of the test browser)."""
    return text.replace("$", "").replace(",", "").replace("\u2212", "-").strip()


def http_client(web: Bridge) -> httpx.Client:
    return web.client()


def screenshot(page: Page, name: str) -> Path:
    target = ARTIFACTS / "screenshots" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target


def axe_source() -> str:
    return (ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js").read_text()


def axe_violations(page: Page, source: str) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now (WCAG 2.x A
    and AA rules). Evaluated through the driver, not a <script>, so the CSP stays on."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source)
    result: list[dict[str, Any]] = page.evaluate(
        """async () => {
          const r = await axe.run(document, {
            runOnly: { type: 'tag',
                       values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
            resultTypes: ['violations'],
          });
          return r.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                           nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
        }"""
    )
    return result
