"""Deployment posture and the database session's settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "PASSLINE_ENV"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deploy_check():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PASSLINE_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="passline.example",
        SMS_PROVIDER="",  # no texts (production refuses the logging provider)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = manage("check", PASSLINE_ENV="production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_never_creates_demo_logins():
    result = manage("seed_demo", PASSLINE_ENV="production", SECRET_KEY=secrets.token_urlsafe(50), SMS_PROVIDER="")
    assert result.returncode != 0
    assert "never created" in result.stderr


def test_debug_is_off_unless_asked():
    from django.conf import settings

    assert settings.DEBUG is False


@pytest.mark.django_db
def test_database_session_is_read_committed_strict_and_not_root():
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.tx_isolation, @@SESSION.sql_mode, CURRENT_USER()")
        isolation, sql_mode, user = cursor.fetchone()
    assert isolation == "READ-COMMITTED"
    assert "STRICT_TRANS_TABLES" in sql_mode
    assert not user.startswith("root@")
