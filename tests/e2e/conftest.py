"""Browser tests: Playwright drives Debian's chromium against a live KI-Post on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator

import pytest
from werkzeug.serving import make_server

from ki_post.extensions import db
from tests.helpers import PASSWORD, make_app

CHROMIUM = os.environ.get("KI_POST_TEST_CHROMIUM", "/usr/bin/chromium")
# Closed network: no background traffic, no component updates (see the machine notes).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()


@pytest.fixture
def live_app(tmp_path):
    app = make_app(tmp_path, "sqlite", BASE_URL="")
    with app.app_context():
        from ki_post.auth.services import create_user
        from ki_post.demo import load_demo_data

        for role in ("admin", "sachbearbeitung", "lesen"):
            create_user(f"{role}@ministerium.example", role.capitalize(), role, PASSWORD)
        load_demo_data()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live_server(live_app) -> Iterator[LiveServer]:
    with LiveServer(live_app) as server:
        live_app.config["BASE_URL"] = server.url
        yield server


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} fehlt (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="de-DE", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def login(page, role: str = "sachbearbeitung") -> None:
    page.goto("/anmelden")
    page.get_by_label("E-Mail-Adresse").fill(f"{role}@ministerium.example")
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url("**/")


_AXE = None


def assert_accessible(page) -> None:
    """axe-core with the WCAG 2.1 A/AA rules: no serious or critical violation on this page."""
    global _AXE
    from axe_playwright_python.sync_playwright import Axe

    _AXE = _AXE or Axe()
    results = _AXE.run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    violations = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not violations, f"{page.url}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in violations
    )


class LetterWorker:
    """The outbox worker loop in a thread of the live app (what the embedded default runs): it runs
    the letter jobs the compose page queues. ``start`` when the test wants the jobs to run."""

    def __init__(self, app):
        self.app = app
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from ki_post.outbox.worker import Worker

        def loop() -> None:
            with self.app.app_context():
                worker = Worker(self.app)
                worker.stop_event = self.stop
                worker.run(once=False, poll_seconds=0.2)

        if self.thread is None:
            self.thread = threading.Thread(target=loop, name="e2e-worker", daemon=True)
            self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(60)


@pytest.fixture
def letter_worker(live_app) -> Iterator[LetterWorker]:
    worker = LetterWorker(live_app)
    yield worker
    worker.close()
