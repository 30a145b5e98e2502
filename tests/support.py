"""Helpers for tests that wait on asynchronous effects or run the project's processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from bus.handlers import Handler
from bus.runner import Delivery, WorkerRunner

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = "") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate!r}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_env(**overrides: str) -> dict[str, str]:
    """The environment for a project process that works on this test run's database and broker."""
    db = settings.DATABASES["default"]
    env = {k: v for k, v in os.environ.items() if k not in {"DB_TEST_NAME", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        PASSLINE_ENV="test",
        DB_NAME=db["NAME"],
        DB_USER=db["USER"],
        DB_PASSWORD=db["PASSWORD"],
        DB_HOST=db["HOST"] or "127.0.0.1",
        DB_PORT=str(db["PORT"] or 3306),
        RABBITMQ_URL=settings.RABBITMQ_URL,
        RABBITMQ_HEARTBEAT=str(settings.RABBITMQ_HEARTBEAT),
        LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def _serves(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:  # nosec B310
            return response.status == 200
    except OSError:
        return False


@contextmanager
def running_daphne(log_path: Path, **env: str) -> Iterator[tuple[int, subprocess.Popen]]:
    """A real daphne on a free port, with :func:`process_env` and ``env``, once it serves
    /healthz: its port and process. On the way out it is stopped if it still runs (SIGTERM, then
    SIGKILL) and the end of its log printed (shown with a failing test's output)."""
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "daphne"), "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
            cwd=ROOT,
            env=process_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _serves(port), timeout=60, interval=0.2, what="daphne to serve")
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        print(log_path.read_text(errors="replace")[-4000:])


class ManagedProcess:
    """A ``manage.py`` command in a child process, its output in a log file."""

    def __init__(self, *args: str, log_dir: Path, **env: str):
        self.args = args
        self.log_path = log_dir / f"{'-'.join(args).replace('/', '_')}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=process_env(**env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class InThread:
    """Run a relay or consumer runner (anything with run()/stop()) in a thread of this process."""

    def __init__(self, worker):  # type: ignore[no-untyped-def]
        self.worker = worker
        self.error: BaseException | None = None
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.worker.run(install_signal_handlers=False)
        except BaseException as error:  # noqa: BLE001 - reported by stop()
            self.error = error
        finally:
            connections.close_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker and wait for its thread; raise what the thread raised. A second
        call does nothing (the ``run_worker`` fixture stops at teardown what a test left running)."""
        if self.stopped:
            return
        self.stopped = True
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.worker!r} did not stop within {timeout:g} s"
        if self.error is not None:
            raise self.error


class WorkerThreads:
    """The relays and consumer runners one test runs in threads (the ``worker_threads`` fixture)."""

    def __init__(self) -> None:
        self.started: list[InThread] = []

    def start(self, worker) -> InThread:  # type: ignore[no-untyped-def]
        running = InThread(worker)
        self.started.append(running)
        return running

    def stop(self) -> None:
        """Stop every one still running, in the order they started; then raise the first
        error a thread had, once all of them have stopped."""
        errors = []
        for running in self.started:
            try:
                running.stop()
            except BaseException as error:  # noqa: BLE001 - raised once every thread has stopped
                errors.append(error)
        if errors:
            raise errors[0]


class RecordingRunner(WorkerRunner):
    """A consumer runner that remembers each batch it takes (the deliveries, in order), and with
    ``hold=True`` keeps each batch's handlers waiting until the test ``release()``s it — while
    its connection goes on taking deliveries into the inbox, so a test can decide what the next
    batch holds."""

    def __init__(self, consumers: list[Handler], *, hold: bool = False, **kwargs: Any):
        super().__init__(consumers, **kwargs)
        self.batches: list[list[Delivery]] = []
        self._permits = threading.Semaphore(0) if hold else None

    def waiting(self) -> int:
        """Deliveries in the inbox, not yet taken into a batch."""
        return len(self._inbox)

    def payloads(self) -> list[list[dict[str, Any]]]:
        """Each batch taken so far, as the payloads of its messages."""
        return [[json.loads(delivery.body)["payload"] for delivery in batch] for batch in list(self.batches)]

    def release(self, batches: int = 1) -> None:
        assert self._permits is not None, "a runner made with hold=True"
        self._permits.release(batches)

    def _handle(self, deliveries: list[Delivery]) -> None:
        self.batches.append(list(deliveries))
        super()._handle(deliveries)

    def _on_connection_thread(self, consumer: Handler) -> bool:
        # A held batch waits on the handler thread, even a quick consumer's: the connection's
        # thread goes on taking deliveries into the inbox meanwhile.
        return self._permits is None and super()._on_connection_thread(consumer)

    def _in_transactions(self, consumer: Handler, items: list) -> list:  # type: ignore[override]
        # On the handler thread: the connection's thread keeps pumping meanwhile.
        if self._permits is not None and not self._permits.acquire(timeout=60):
            raise AssertionError("a held batch was never released")
        return super()._in_transactions(consumer, items)


async def asgi_get(application: Any, path: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> tuple[int, bytes]:
    """One GET through a whole ASGI application, as daphne hands it over: its status and body."""
    sent: list[dict[str, Any]] = []
    body_read = False

    async def receive() -> dict[str, Any]:
        nonlocal body_read
        if not body_read:
            body_read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Future()  # the client stays connected until the response is sent
        return {}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await application(scope, receive, send)
    return sent[0]["status"], b"".join(message.get("body", b"") for message in sent[1:])
