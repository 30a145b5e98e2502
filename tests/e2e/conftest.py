"""End-to-end fixtures: a real daphne subprocess on the test database, driven by a real Chromium.

Usage in a test::

    def test_something(e2e_db, live_url: str, page: Page) -> None:
        User.objects.create_user(...)        # committed, so daphne sees it
        page.goto(f"{live_url}/admin/login/")

- ``live_url`` (session): ``"http://127.0.0.1:<port>"`` served by ``.venv/bin/daphne`` against
  pytest-django's test database (DB_NAME=<test db>, PASSLINE_ENV=test).
- ``e2e_db`` (function): ``transactional_db``. Data must be *committed* to be visible to the
  daphne process, so every e2e test that writes data uses it (or
  ``@pytest.mark.django_db(transaction=True)``). The tables are flushed after each test.
- ``browser`` (session) / ``page`` (function, fresh context 1280x900; on failure a screenshot
  and the console log go to ``test-artifacts/``).
- ``e2e_env`` (session): the environment the daphne subprocess gets; start workers
  (``manage.py relay_outbox`` …) with ``AppProcess`` and this env so they share its database,
  broker and Redis, e.g. in a session fixture::

      relay = AppProcess("relay", [sys.executable, "manage.py", "relay_outbox"], e2e_env, log)
      relay.start(); yield relay; relay.stop()

While the browser is open, Playwright's event loop counts as running in the main thread: the
ORM works in tests (see ``browser``), but ``async_to_sync`` refuses to run there; call
async code (e.g. a channel layer ``group_send``) from a worker thread instead.

Every test under tests/e2e is marked ``e2e`` and runs after all other tests (see
``pytest_collection_modifyitems`` for why).
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

E2E_DIR = Path(__file__).resolve().parent
BASE_DIR = E2E_DIR.parent.parent
ARTIFACTS_DIR = BASE_DIR / "test-artifacts"
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1280, "height": 900}
# A phone (an iPhone 12-14's CSS viewport): every new customer flow is walked here too.
PHONE_VIEWPORT = {"width": 390, "height": 844}

# Daphne imports Django, the ASGI app and opens its first database connection on the first
# request; 30 s is far above a cold start on a slow CI machine and still fails fast.
STARTUP_TIMEOUT = 30.0
# SIGTERM lets daphne close its sockets and connections; after this it is killed.
SHUTDOWN_TIMEOUT = 10.0
# Playwright's default per-action timeout (30 s) hides a hung page for too long.
PAGE_TIMEOUT_MS = 10_000

_reports_key = pytest.StashKey[dict[str, pytest.TestReport]]()


# --- collection and reporting hooks ---------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e ``e2e`` and move them to the end of the run.

    This hook sees the whole session's items, so it filters by path. E2E tests go last because
    Playwright's sync API keeps an asyncio loop marked as running in the main thread for as
    long as the session-scoped browser lives: a unit or integration test after it would hit
    SynchronousOnlyOperation on the ORM, or refuse ``async_to_sync``.
    """
    e2e_items = []
    other_items = []
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)
            e2e_items.append(item)
        else:
            other_items.append(item)
    items[:] = other_items + e2e_items


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item so ``page`` knows, at teardown, whether the test failed."""
    report = yield
    item.stash.setdefault(_reports_key, {})[report.when] = report
    return report


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago (``live_url`` retries if another process takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    # If pytest itself is killed (no fixture teardown), the kernel sends SIGTERM to the child,
    # so no daphne or worker is left behind holding a port and database connections.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no output)"


class AppProcess:
    """One Passline process (daphne, a worker) as a subprocess, its output captured to a file."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        _processes.append(self)
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            log.close()  # the child holds its own copy of the descriptor

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready()`` until it is true, the process dies, or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} before {what}")
            if ready():
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{self.name} did not get {what} within {timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT)

    def failure_message(self, error: Exception) -> str:
        return f"{error}\n--- last lines of {self.log_path} ---\n{tail(self.log_path)}"


# Every app process the session started, so a failing test can show what the server logged.
_processes: list[AppProcess] = []


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


def log_in(page: Page, live_url: str, username: str, password: str, next_path: str = "/") -> None:
    """Log in through the site's own form, landing on ``next_path``."""
    page.goto(f"{live_url}/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def e2e_env(django_db_setup) -> dict[str, str]:
    """The environment for app subprocesses: this session's test database and the same services."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    # The subprocess is an ordinary app process, not a test runner: it must not create test
    # databases, and Django's async-safety checks stay on inside it.
    for name in ("DB_TEST_NAME", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(name, None)
    env.update(
        {
            "PASSLINE_ENV": "test",
            "DJANGO_SETTINGS_MODULE": "passline.settings",
            # pytest-django has switched NAME to the test database by now.
            "DB_NAME": str(db["NAME"]),
            "DB_USER": str(db["USER"]),
            "DB_PASSWORD": str(db["PASSWORD"]),
            "DB_HOST": str(db["HOST"]),
            "DB_PORT": str(db["PORT"]),
            "RABBITMQ_URL": settings.RABBITMQ_URL,
            "REDIS_URL": settings.REDIS_URL,
            "CACHE_URL": settings.CACHES["default"]["LOCATION"],
            "CACHE_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
            "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="session")
def live_url(e2e_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` served by a real daphne on the test database, for the whole session."""
    daphne = VENV_BIN / "daphne"
    if not daphne.exists():
        pytest.fail(f"{daphne} is missing; run `make setup-test` to build the virtualenv.")
    log_dir = tmp_path_factory.mktemp("daphne")
    server = None
    # A port picked as free can be taken before daphne binds it; two retries cover that race.
    for attempt in range(1, 4):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = AppProcess(
            "daphne",
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
            e2e_env,
            log_dir / f"daphne-{attempt}.log",
        )
        server.start()
        try:
            health = f"{url}/healthz"
            server.wait_until(lambda health=health: _healthy(health), STARTUP_TIMEOUT, "a 200 from /healthz")
            break
        except RuntimeError as error:
            server.stop()
            if "Address already in use" in tail(server.log_path) and attempt < 3:
                continue
            pytest.fail(f"daphne did not start.\n{server.failure_message(error)}", pytrace=False)
    print(f"\ndaphne serving {url} on database {e2e_env['DB_NAME']}; log: {server.log_path}")
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def e2e_db(transactional_db) -> None:
    """Committed test data, visible to the daphne subprocess; flushed after the test."""


@pytest.fixture(autouse=True)
def _committed_data_only(request: pytest.FixtureRequest) -> None:
    """Fail fast when a test gives daphne data it cannot see.

    With ``db`` the test's rows live in a transaction that is rolled back and never committed:
    the server would answer as if they did not exist (and could wait on their row locks).
    Shared fixtures that use ``db`` (``customer``, ``menu``, …) are fine next to ``e2e_db``:
    pytest-django then runs the whole test in transactional mode.
    """
    names = request.fixturenames
    if "live_url" not in names or "transactional_db" in names:
        return
    marker = request.node.get_closest_marker("django_db")
    uses_db = "db" in names or marker is not None
    transactional = "django_db_reset_sequences" in names or (
        marker is not None
        and bool(marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences") or marker.args[:1] == (True,))
    )
    if uses_db and not transactional:
        pytest.fail(
            "This e2e test writes through `db`, whose data the daphne process never sees: "
            "request `e2e_db` (or use @pytest.mark.django_db(transaction=True)).",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """A headless system Chromium for the session (Playwright never downloads a browser here)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the e2e tests drive the system Chromium. "
            "Run `make setup-test` (it installs the Debian package) or `apt-get install chromium`.",
            pytrace=False,
        )
    playwright = sync_playwright().start()
    # From here until playwright.stop() Playwright's event loop counts as running in this
    # thread, so Django's async-safety check would refuse the ORM in tests and in the
    # transactional_db flush. Nothing here is actually concurrent: the test body, the flush and
    # Playwright take turns on one thread. Scoped to the browser's lifetime (and e2e tests run
    # last) so the check stays on for every other test.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies shared between tests), 1280x900."""
    yield from _page(browser, request, VIEWPORT)


@pytest.fixture
def phone_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """Like ``page``, at a phone's 390x844 with touch and a phone's device scale."""
    yield from _page(browser, request, PHONE_VIEWPORT, is_mobile=True, has_touch=True, device_scale_factor=3)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact (``test-artifacts/screens/<name>.png``)."""
    path = ARTIFACTS_DIR / "screens" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def _page(
    browser: Browser, request: pytest.FixtureRequest, viewport: dict[str, int], **options: object
) -> Iterator[Page]:
    context = browser.new_context(viewport=viewport, **options)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    try:
        yield page
    finally:
        reports = request.node.stash.get(_reports_key, {})
        if any(report.failed for report in reports.values()):
            _save_artifacts(request.node.nodeid, page, console)
        context.close()


def _save_artifacts(nodeid: str, page: Page, console: list[str]) -> None:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    screenshot = ARTIFACTS_DIR / f"{stem}.png"
    try:
        page.screenshot(path=str(screenshot), full_page=True)
    except Exception as error:  # noqa: BLE001 - a crashed page must not hide the test's own failure
        print(f"Could not take a screenshot: {error}")
    else:
        print(f"Screenshot of {page.url}: {screenshot}")
    if console:
        (ARTIFACTS_DIR / f"{stem}.console.log").write_text("\n".join(console) + "\n")
    for process in _processes:
        if process.running():
            print(f"--- last lines of {process.name}'s log ({process.log_path}) ---\n{tail(process.log_path, 40)}")
