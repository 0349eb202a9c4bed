"""A person's first session, in a real browser: sign in, connect the sandbox, create a cluster and
an app, deploy, watch a crashing image roll back, change a config var, and roll back to v1 from the
releases page — each step watched live on the page, never by reloading it.

The dashboard runs on pytest-django's live server; a real worker process (`rqworker
--with-scheduler`) runs the jobs against the sandbox, sharing the test database; a thread ticks the
tracker as the scheduler would. Debian's Chromium is driven by Playwright (no browser download);
without it the test is skipped. Screenshots of every step go to var/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.db import connections

from deployments import tracker
from deployments.models import Membership
from deployments.sandbox.server import Sandbox
from tests import factories
from tests.conftest import BASE_DIR, database_url

CHROMIUM = os.environ.get("TINYSTACKS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = BASE_DIR / "var" / "screenshots"
PASSWORD = "a-long-test-pass-phrase"
# A rollout on the sandbox takes seconds; provisioning a cluster up to half a minute.
ROLLOUT_TIMEOUT_MS = 60_000
CLUSTER_TIMEOUT_MS = 90_000
TICK_SECONDS = 0.25
SANDBOX_STEP_SECONDS = 0.5

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    ),
]


@pytest.fixture
def worker(
    sandbox: Sandbox, redis_url: str, rq_redis: redis.Redis, tmp_path: Path
) -> Iterator[Path]:
    """A real worker with its scheduler, on the test database; yields its log file."""
    log = tmp_path / "worker.log"
    environment = os.environ | {
        "DEBUG": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "TINYSTACKS_SANDBOX_URL": sandbox.url,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "--with-scheduler", "default"],
            cwd=BASE_DIR,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        yield log
        # The whole group: the worker, its scheduler and any work horse, so that none of them
        # still holds a database session when the test database is dropped.
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def ticking(worker: Path, sandbox: Sandbox) -> Iterator[None]:
    """The tracker tick, as `rqcron` would schedule it, several times per step of the sandbox's
    ECS: a circuit-breaker rollback that completed between two ticks would leave no trace of
    its failed deployment to be seen (it reads as "replaced", not "rolled back")."""
    sandbox.tick_seconds, fast = SANDBOX_STEP_SECONDS, sandbox.tick_seconds
    stop = threading.Event()
    errors: list[BaseException] = []

    def tick() -> None:
        try:
            while not stop.wait(TICK_SECONDS):
                tracker.follow_rollouts()
        except BaseException as error:  # surfaced by the test, not lost in the thread
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=tick, name="tick", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)
    sandbox.tick_seconds = fast
    assert not errors, errors


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            browser.close()


class Journey:
    """The browser page, with a numbered screenshot of every step."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page, self.base_url, self.step = page, base_url, 0
        self.console_errors: list[str] = []
        page.on("console", self._console)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(path=SCREENSHOTS / f"{self.step:02d}-{name}.png", full_page=True)

    def see(self, selector: str, text: str, timeout: int = ROLLOUT_TIMEOUT_MS) -> None:
        sync_api.expect(self.page.locator(selector)).to_contain_text(text, timeout=timeout)

    def mark_page(self) -> None:
        """Tag the loaded document: if it is still tagged later, the page was never reloaded."""
        self.page.wait_for_load_state()
        self.page.evaluate("window.tinystacksMark = 'not reloaded'")

    def still_same_page(self) -> bool:
        return bool(self.page.evaluate("window.tinystacksMark === 'not reloaded'"))

    def deploy(self, image: str) -> None:
        self.page.fill("#id_image", image)
        self.page.click("#deploy-form button[type=submit]")
        self.see(".flashes", f"Deploying {image}")
        self.mark_page()


@pytest.fixture
def olivia(transactional_db: None) -> str:
    """An owner of Acme who can sign in; made before the browser starts (Playwright's loop would
    give the test thread a database connection of its own that outlives the test)."""
    team = factories.make_team(name="Acme", slug="acme")
    user = factories.make_user(team, Membership.Role.OWNER, username="olivia")
    user.set_password(PASSWORD)
    user.save()
    return user.get_username()


def test_a_first_session_from_sign_in_to_rollback(
    olivia: str, live_server: Any, ticking: None, browser_page: Any, settings: Any
) -> None:
    settings.SECURE_SSL_REDIRECT = False  # the live server speaks plain HTTP
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False
    journey = Journey(browser_page, live_server.url)
    try:
        _journey(journey, journey.page)
    except BaseException:
        journey.shot("failure")
        raise
    assert not journey.console_errors, journey.console_errors  # e.g. CSP violations


def _journey(journey: Journey, page: Any) -> None:
    started = time.monotonic()
    page.goto(journey.base_url + "/")
    page.fill("#id_username", "olivia")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    journey.see("h1", "Acme")
    journey.shot("signed-in")

    page.locator("nav.mainnav").get_by_role("link", name="AWS accounts").click()
    page.get_by_role("button", name="Connect the local sandbox").click()
    journey.see("#accounts-table", "Verified")
    journey.shot("sandbox-connected")

    page.goto(journey.base_url + "/")
    page.locator(".page-head").get_by_role("link", name="New cluster").click()
    page.click("#cluster-form button[type=submit]")  # name "main" and the one account preset
    journey.see(".flashes", "Provisioning cluster main")
    journey.mark_page()
    journey.shot("cluster-provisioning")
    journey.see("#cluster-live", "Ready for apps", timeout=CLUSTER_TIMEOUT_MS)
    assert journey.still_same_page()
    journey.shot("cluster-ready")

    page.locator("nav.mainnav").get_by_role("link", name="Overview").click()
    page.locator(".page-head").get_by_role("link", name="New app").click()
    page.fill("#id_name", "web")
    page.click("#app-form button[type=submit]")  # on main, the one ready cluster
    journey.see(".flashes", "Created app web")
    journey.shot("app-created")

    journey.deploy("nginx:1.27")
    journey.shot("v1-deploying")  # on the sandbox it may be over already: no assertion here
    journey.see("#rollout .state", "Succeeded")
    journey.see("#rollout", "v1 is live: 2 of 2 tasks running.")
    assert journey.still_same_page()
    journey.shot("v1-succeeded")

    journey.deploy("nginx:crashloop")
    journey.see("#app-live", "Rolled back — v1 is live again.")
    journey.see("#rollout .state", "Rolled back")
    assert journey.still_same_page()
    journey.shot("v2-rolled-back")

    # v1 is live again, so it cannot be rolled back to yet: a config change makes v3 first.
    page.fill("#id_config_vars", "GREETING=hello")
    page.click("#config-form button[type=submit]")
    journey.see(".flashes", "Saved the config vars as v3")
    journey.mark_page()
    journey.see("#rollout .state", "Succeeded")
    assert journey.still_same_page()
    journey.shot("v3-config-succeeded")

    page.locator("nav.tabs").get_by_role("link", name="Releases").click()
    journey.see("#v3", "Live")
    journey.see("#v3", "Added GREETING")
    journey.see("#v2", "Rolled back")
    journey.shot("releases")
    page.click("#v1 summary")
    journey.see("#v1", "Roll back to v1? A new release runs its image and config.")
    journey.shot("rollback-confirm")
    page.locator("#v1").get_by_role("button", name="Confirm rollback to v1").click()
    journey.see(".flashes", "Rolling back to v1 as v4")
    journey.mark_page()
    journey.see("#rollout .state", "Succeeded")
    journey.see("#rollout", "Rollout of v4")
    assert journey.still_same_page()
    journey.shot("v4-rollback-succeeded")

    page.locator("nav.tabs").get_by_role("link", name="Releases").click()
    journey.see("#v4", "Live")
    journey.see("#v4", "Removed GREETING")
    page.locator("nav.mainnav").get_by_role("link", name="Overview").click()
    journey.see("#apps", "Healthy")
    journey.shot("overview")
    assert time.monotonic() - started < 120
