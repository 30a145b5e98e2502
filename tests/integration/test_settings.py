"""Deployment posture and the database session's settings."""

from __future__ import annotations

import os
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


# Production's deploy check, its refusal without a SECRET_KEY and of the demo logins:
# tests/security/test_deployment.py.


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
