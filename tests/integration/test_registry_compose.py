"""docker-compose.yml: valid against the compose specification's schema (checked without a
Docker daemon); every long-running service, of any profile, restarts by itself and has a health
check; each worker, the relay and the scheduler is checked by its own registry entry, under its
own role; what depends on another service waits for it to be healthy (or done, for a one-shot
job); the processes of this code base get SIGTERM and time to stop gracefully before a SIGKILL."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from django.conf import settings

from bus import roles
from bus.registry import SCHEDULER
from operations.status import expected_roles
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
# One-shot jobs (the migrations, a replica's set-up) say so; everything else runs for good.
ONE_SHOT = {name for name, service in SERVICES.items() if service.get("restart") == "no"}


def _seconds(duration: str) -> float:
    """A compose duration ("30s", "1m30s", "1.5s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", str(duration))
    assert parts and "".join(f"{n}{u}" for n, u in parts) == str(duration), f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def _runs_this_code(service: dict) -> bool:
    command = [str(part) for part in service.get("command", [])]
    return service.get("image") == SERVICES["web"]["image"] and any(part in {"manage.py", "daphne"} for part in command)


def test_the_compose_file_is_valid_against_the_compose_specification():
    # check-jsonschema ships the compose-spec schema (pinned with the package): no daemon,
    # no download, and an unknown key or a wrong value anywhere in the file fails here.
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _role_of(command: list[str]) -> str | None:
    """The registry role a service's command runs as (None: not a registry process)."""
    if "consume" in command:
        return roles.role_of_queues(command[command.index("consume") + 1 :])
    if "relay_outbox" in command:
        return roles.RELAY
    if "scheduler" in command:
        return SCHEDULER
    return None


def test_every_long_running_service_restarts_by_itself_and_has_a_health_check():
    assert "migrate" in ONE_SHOT
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            continue
        assert service.get("restart") == "unless-stopped", f'{name}: restart: unless-stopped (or "no" for a job)'
        check = service.get("healthcheck", {})
        assert check.get("test") and check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert check.get("interval") and check.get("timeout"), name


def test_each_worker_relay_and_scheduler_is_checked_by_its_own_registry_entry():
    checked = {}
    for name, service in SERVICES.items():
        role = _role_of([str(part) for part in service.get("command", [])])
        if role is None:
            continue
        assert service["healthcheck"]["test"] == ["CMD", "python", "manage.py", "workers", "--check", role, "--self"]
        checked[role] = name
    # every role the registry expects runs in compose, and is checked
    assert set(checked) == set(expected_roles())


def test_web_is_healthy_when_ready_and_nginx_waits_for_it():
    assert any("/readyz" in str(part) for part in SERVICES["web"]["healthcheck"]["test"])
    assert "RABBITMQ_PASSWORD_MONITOR" in SERVICES["web"]["environment"]
    assert SERVICES["nginx"]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_dependencies_wait_for_health_or_completion():
    for name, service in SERVICES.items():
        depends_on = service.get("depends_on") or {}
        # The short form (a list) only waits for the start: the long form says what it waits for.
        assert isinstance(depends_on, dict), f"{name}: depends_on with conditions"
        for dependency, condition in depends_on.items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            if name == "prometheus":
                # the monitoring comes up whatever the state of what it watches: that is its use
                wanted = "service_started"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"
            assert "healthcheck" in SERVICES[dependency] or dependency in ONE_SHOT, dependency


def test_the_processes_of_this_code_get_sigterm_and_time_to_stop_gracefully():
    """A worker finishes its batch, the relay its confirms, daphne closes its sockets with 1001
    (bus/shutdown.py, live/shutdown.py): compose must wait longer than they may take."""
    ours = {name: service for name, service in SERVICES.items() if _runs_this_code(service)}
    assert {"web", "relay", "scheduler"} <= set(ours)
    for name, service in ours.items():
        assert service.get("init") is True, f"{name}: a real PID 1 forwards SIGTERM"
        assert service.get("stop_signal", "SIGTERM") == "SIGTERM", name
        if name in ONE_SHOT:
            continue
        grace = _seconds(service.get("stop_grace_period", "10s"))
        assert grace > max(settings.STOP_GRACE_SECONDS, settings.LIVE_GOING_AWAY_SECONDS), name
