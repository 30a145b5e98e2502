"""Deploying Passline as the repository ships it is safe: no default secret, no demo data unless
asked for, production settings that pass Django's own deployment checks, a Content-Security-Policy
on every page, and an edge (docker/nginx/nginx.conf, run here in a real nginx) that rate-limits
by the real client address and cannot be told another one.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_ENV = COMPOSE["x-app"]["environment"]


# --- docker-compose.yml ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_KEY",
        "DB_PASSWORD",
        "DB_OWNER_PASSWORD",
        "RABBITMQ_PASSWORD",
        "COMPOSE_RABBITMQ_ERLANG_COOKIE",
        "PAYMENT_WEBHOOK_SECRET",
        "COMPOSE_DB_REPLICATION_PASSWORD",
        "COMPOSE_DB_ADMIN_PASSWORD",
    ],
)
def test_compose_has_no_default_secret(name: str) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    uses = re.findall(r"\$\{" + name + r"(:?[-?][^}]*)?\}", text)
    assert uses, f"{name} is not used"
    # every use refuses to start without it (${NAME:?...}); none falls back to a value
    assert all(use.startswith(":?") for use in uses), f"{name} has a default somewhere: {uses}"


def test_compose_runs_production_settings_and_creates_demo_logins_only_on_request() -> None:
    assert APP_ENV["PASSLINE_ENV"] == "${PASSLINE_ENV:-production}"
    assert APP_ENV["PASSLINE_DEMO"] == "${PASSLINE_DEMO:-0}"
    assert APP_ENV["DEBUG"] == "0"
    migrate = " ".join(COMPOSE["services"]["migrate"]["command"])
    seed = migrate[migrate.index("seed_demo") - 120 :]
    assert 'if [ "$$PASSLINE_DEMO" = 1 ] && [ "$$PASSLINE_ENV" = development ]; then' in seed


def test_only_the_edge_is_published_and_daphne_trusts_its_headers() -> None:
    services = COMPOSE["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    # the brokers' ports are bound to loopback for the operators; the web server is not published
    assert "web" not in published and "nginx" in published
    assert all(port.startswith("127.0.0.1:") for name in published - {"nginx"} for port in services[name]["ports"])
    assert "--proxy-headers" in services["web"]["command"]


def test_each_worker_is_given_its_own_brokers_password_and_no_other() -> None:
    for name, service in COMPOSE["services"].items():
        command = " ".join(map(str, service.get("command", [])))
        if "manage.py" not in command or name == "migrate":
            continue
        given = {key for key in service.get("environment", {}) if key.startswith("RABBITMQ_PASSWORD_")}
        if "consume" in command or "relay_outbox" in command:
            role = "RELAY" if "relay_outbox" in command else name.upper().replace("-", "_")
            assert given == {f"RABBITMQ_PASSWORD_{role}"}, name
        else:
            assert not given, name
    assert "RABBITMQ_PASSWORD_" not in " ".join(APP_ENV)


def test_the_migrate_job_is_the_database_owner_and_the_application_is_not() -> None:
    assert COMPOSE["services"]["migrate"]["environment"]["PASSLINE_DB_OWNER"] == "1"
    assert APP_ENV["DB_USER"] != APP_ENV["DB_OWNER_USER"]
    assert "PASSLINE_DB_OWNER" not in APP_ENV


# --- production settings ---------------------------------------------------------------------


def _production_env(**extra: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "LC_ALL"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PASSLINE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        DB_NAME="passline",
        DB_USER="passline",
        DB_PASSWORD="unused",
        # the simulated providers are refused in production unless the deployment is a demo
        PASSLINE_DEMO="1",
        PAYMENT_WEBHOOK_SECRET=secrets.token_urlsafe(32),
    )
    env.update(extra)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_djangos_deployment_checks_without_a_warning() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = _production_env()
    del env["SECRET_KEY"]
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_print_emails_to_the_log_unless_it_is_a_demo() -> None:
    result = _manage("check", env=_production_env(PASSLINE_DEMO="0", SMS_PROVIDER="", PAYMENT_PROVIDER="x.Real"))
    assert result.returncode != 0
    assert "EMAIL_HOST" in result.stderr
    with_smtp = _manage(
        "check",
        env=_production_env(PASSLINE_DEMO="0", SMS_PROVIDER="", PAYMENT_PROVIDER="x.Real", EMAIL_HOST="smtp.example"),
    )
    assert with_smtp.returncode == 0, with_smtp.stderr


def test_production_never_creates_the_demo_logins() -> None:
    result = _manage("seed_demo", env=_production_env())
    assert result.returncode != 0
    assert "never created with PASSLINE_ENV=production" in result.stderr


# --- headers of every page -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/login/", "/api/v1/restaurants", "/api/v1/docs"])
def test_every_page_carries_a_content_security_policy(path: str) -> None:
    response = Client().get(path)
    policy = dict(
        (part.split(" ", 1) + [""])[:2] for part in response.headers["Content-Security-Policy"].split("; ") if part
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_no_template_needs_inline_script_or_style() -> None:
    """What the policy forbids is nowhere in the templates: an inline <script> (but JSON data),
    an on* handler attribute, a style attribute or a <style> element."""
    offences = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in script and 'type="application/json"' not in script:
                offences.append(f"{template.name}: {script}")
        offences += [f"{template.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", text)]
        offences += [f"{template.name}: {m}" for m in re.findall(r"\sstyle\s*=|<style\b", text)]
    assert not offences


# --- the edge: docker/nginx/nginx.conf in a real nginx ---------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Echo(http.server.BaseHTTPRequestHandler):
    """Stands in for daphne: answers with the headers nginx sent it."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (scripts/setup.sh test installs it)")
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = _free_port()
    conf = (ROOT / "docker" / "nginx" / "nginx.conf").read_text()
    conf = conf.replace("server web:8000;", f"server 127.0.0.1:{upstream.server_port};")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = conf.replace("include /etc/nginx/mime.types;", "")
    conf = conf.replace("access_log /dev/stdout;", "access_log off;")
    conf = conf.replace("error_log /dev/stderr warn;", f"error_log {tmp_path}/error.log warn;")
    # nginx writes its temporary files under its prefix
    (tmp_path / "nginx.conf").write_text(conf)
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()


def _post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, {}


def test_the_edge_limits_password_guessing_per_client_address(edge: str) -> None:
    statuses = [_post(f"{edge}/api/v1/auth/token")[0] for _ in range(12)]
    # a burst of five beyond the rate passes; the rest are refused before reaching daphne
    assert statuses[:5] == [200] * 5
    assert statuses.count(429) >= 6


def test_the_edge_cannot_be_told_another_client_address(edge: str) -> None:
    status, seen = _post(f"{edge}/api/v1/orders", {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
    assert status == 200
    # daphne --proxy-headers believes the first X-Forwarded-For address: nginx sets it itself
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
def test_the_edge_does_not_serve_the_operators_endpoints(edge: str, path: str) -> None:
    request = urllib.request.Request(f"{edge}{path}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404
