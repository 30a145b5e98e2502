"""docker-compose.yml: every long-running service restarts by itself and has a health check;
each worker, the relay and the scheduler is checked by its own registry entry, under its own
role; what depends on another service waits for it to be healthy (or done, for the migrate job)."""

from __future__ import annotations

import yaml

from bus import roles
from bus.registry import SCHEDULER
from operations.status import expected_roles
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
ONE_SHOT = {name for name, service in SERVICES.items() if service.get("restart") == "no"}


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
    assert ONE_SHOT == {"migrate"}
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            continue
        assert service.get("restart") == "unless-stopped", name
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
        for dependency, condition in (service.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            if name == "prometheus":
                # the monitoring comes up whatever the state of what it watches: that is its use
                wanted = "service_started"
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"
            assert "healthcheck" in SERVICES[dependency] or dependency in ONE_SHOT, dependency
