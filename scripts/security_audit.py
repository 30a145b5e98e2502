"""`make audit`: bandit over the project's code, pip-audit over both pinned requirements files.

Bandit fails the run on any finding of medium or high severity with at least medium
confidence (pyproject.toml's [tool.bandit] says what is skipped and why). pip-audit fails it on
any known vulnerability in a pinned dependency. pip-audit asks a vulnerability service on the
network (PyPI's JSON API by default, or OSV with PIP_AUDIT_SERVICE=osv); where none is
reachable it cannot audit, and this says so loudly instead of passing in silence. Set
PASSLINE_AUDIT_REQUIRED=1 (release pipelines) to make an unreachable service a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")


def bandit() -> bool:
    command = [
        str(BIN / "bandit"),
        "--configfile",
        "pyproject.toml",
        "--recursive",
        "--quiet",
        "--severity-level",
        "medium",
        "--confidence-level",
        "medium",
        ".",
    ]
    result = subprocess.run(command, cwd=ROOT, check=False)
    print("bandit: no finding of medium or high severity" if result.returncode == 0 else "bandit: findings above")
    return result.returncode == 0


def pip_audit(requirements: str) -> bool | None:
    """True: audited and clean; False: vulnerabilities; None: the service could not be asked."""
    service = os.environ.get("PIP_AUDIT_SERVICE", "pypi")
    command = [
        str(BIN / "pip-audit"),
        "--requirement",
        requirements,
        "--require-hashes",
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(f"pip-audit {requirements}: the {service} vulnerability service did not answer")
        return None
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        print(f"pip-audit {requirements}: the {service} vulnerability service knows none of the packages")
        return None
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            print(f"  {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixed})")
    skipped = len(dependencies) - len(audited)
    print(
        f"pip-audit {requirements}: {len(audited)} packages audited, {skipped} not known to the service, {len(vulnerable)} vulnerable"
    )
    return not vulnerable


def main() -> int:
    ok = bandit()
    required = os.environ.get("PASSLINE_AUDIT_REQUIRED") == "1"
    for requirements in REQUIREMENTS:
        outcome = pip_audit(requirements)
        if outcome is None:
            print(
                "  WARNING: the dependency audit did NOT run (no vulnerability service reachable from here)"
                + ("; PASSLINE_AUDIT_REQUIRED=1 makes this a failure" if required else "")
            )
            ok = ok and not required
        else:
            ok = ok and outcome
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
