#!/usr/bin/env python3
"""Run every process of the Procfile under supervisord, which restarts one that dies.

    scripts/supervise.py [--procfile Procfile] [--dir var/supervisor] [--write-only] [--no-prometheus]

The Procfile stays the one list of processes (the benchmark and compose read it too); this
writes ``<dir>/supervisord.conf`` from it and then becomes supervisord, in the foreground,
every process's output on this terminal. A process that exits is restarted and the exit is
logged (``exited: billing (terminated by SIGKILL; not expected)``); the others go on serving.
One that dies within ``START_SECONDS`` of its start is retried after 1, 2, 3 … s (supervisord's
back-off) and given up only after ``START_RETRIES`` such failures in a row, so a service that is
down for minutes does not leave a worker given up for good. Ctrl-C or SIGTERM stops them all,
each with SIGTERM first (the workers finish the message in hand), SIGKILL after
``STOP_WAIT_SECONDS``. The web line runs as ``WEB_PROCESSES`` daphnes (one per core by default)
on one listening socket that supervisord opens and hands each of them (an ``fcgi-program``):
the kernel spreads the connections, and one daphne restarting leaves the others serving. While it runs, ``.venv/bin/supervisorctl -c <dir>/supervisord.conf
status`` lists the processes with their pids and uptimes.

Beside them, Prometheus (when installed: scripts/setup.sh installs Debian's package) scrapes the
web's ``/metrics`` and RabbitMQ's plugin with the rules of ``ops/prometheus/``, its data in
``var/prometheus-server``, its UI on ``127.0.0.1:$PROMETHEUS_PORT`` (9090). The processes' metric
files (``var/prometheus``, operations/multiprocess.py) are emptied first: a run counts from zero.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
WEB = "web"

# A process that lives this long counts as started; one that dies sooner is backed off.
START_SECONDS = 3
# Failed starts in a row before supervisord gives a process up: back-off grows by a second a
# try, so 60 tries wait about half an hour in all.
START_RETRIES = 60
# SIGTERM, then this long to finish the message in hand, then SIGKILL.
STOP_WAIT_SECONDS = 20


def procfile_entries(text: str) -> list[tuple[str, str]]:
    """(name, command) for each ``name: command`` line; blank lines and comments are skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line)
        if match is None:
            raise ValueError(f"Procfile line {number} is not 'name: command': {line!r}")
        entries.append((match.group(1), match.group(2)))
    names = [name for name, _ in entries]
    if len(set(names)) != len(names):
        raise ValueError("the Procfile names a process twice")
    return entries


def supervisord_conf(entries: list[tuple[str, str]], *, directory: Path, workdir: Path, web: Web | None = None) -> str:
    """The configuration for ``entries``: each a program that restarts, logging to our stdout;
    with ``web``, the entry named ``web`` as that many processes on one shared socket."""
    socket = directory / "supervisor.sock"
    lines = [
        "; Written by scripts/supervise.py from the Procfile; changes here are overwritten.",
        "[supervisord]",
        "nodaemon=true",
        f"logfile={directory / 'supervisord.log'}",
        "logfile_maxbytes=5MB",
        "logfile_backups=1",
        f"pidfile={directory / 'supervisord.pid'}",
        f"childlogdir={directory}",
        "",
        "[unix_http_server]",
        f"file={socket}",
        "chmod=0700",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for name, command in entries:
        section = [f"[program:{name}]"]
        if name == WEB and web is not None:
            # The web processes share one listening socket, which supervisord opens and hands
            # each of them as fd 0 (its fcgi-program): the kernel spreads connections over them.
            command = web_command(command)
            section = [
                f"[fcgi-program:{name}]",
                f"socket=tcp://{web.address}",
                f"numprocs={web.processes}",
                "process_name=web-%(process_num)d",
            ]
        # Through a shell for the Procfile's ${VAR:-default}; exec, so signals reach the process.
        # supervisord reads %(name)s expansions in its values: a literal % is written %%.
        argv = shlex.join(["/bin/sh", "-c", f"exec {command}"]).replace("%", "%%")
        process_name = "web-%(process_num)d" if section[0].startswith("[fcgi") else name
        lines += [
            "",
            *section,
            f"command={argv}",
            f"directory={workdir}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={START_SECONDS}",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            # Every process's output on the terminal, as honcho showed it; the logs name the
            # process (passline/logging.py reads PASSLINE_PROCESS).
            "stdout_logfile=/dev/stdout",
            "stdout_logfile_maxbytes=0",
            "redirect_stderr=true",
            f'environment=PASSLINE_PROCESS="{process_name}"',
        ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Web:
    """Where the web processes listen, and how many share the socket."""

    address: str  # host:port
    processes: int


def web_processes() -> int:
    """``WEB_PROCESSES``: the web processes ``make run`` starts, one per core by default."""
    raw = _setting("WEB_PROCESSES", "") or str(os.cpu_count() or 1)
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"WEB_PROCESSES must be a whole number of at least 1, not {raw!r}")
    return int(raw)


def web_settings() -> Web:
    host = _setting("PASSLINE_HOST", "127.0.0.1")
    return Web(address=f"{host}:{_setting('PASSLINE_PORT', '8000')}", processes=web_processes())


# The Procfile's web line binds an address itself (``-b <host> -p <port>``: compose and a plain
# Procfile runner start it so); under supervisord it takes the shared socket instead.
_BIND = re.compile(r"\s-b\s+\S+\s+-p\s+\S+")


def web_command(command: str) -> str:
    """The Procfile's daphne line, serving the socket on fd 0 instead of binding its own."""
    if not _BIND.search(command):
        raise ValueError(f"the Procfile's web line must bind with '-b <host> -p <port>': {command!r}")
    return _BIND.sub(" --fd 0", command, count=1)


def _setting(name: str, default: str) -> str:
    """A setting as the processes will see it: the environment, else .env, else ``default``."""
    if os.environ.get(name):
        return os.environ[name]
    env_file = ROOT / ".env"
    if env_file.is_file():
        for line in reversed(env_file.read_text().splitlines()):
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1].strip().strip("'\"")
    return default


def metrics_dir() -> Path:
    """Where the processes write their metrics (passline/settings.py's METRICS_DIR), emptied."""
    path = Path(_setting("PROMETHEUS_MULTIPROC_DIR", "") or ROOT / "var" / "prometheus")
    if not path.is_absolute():
        path = ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    return path


def prometheus_config(template: str, *, web: str, vhost: str, rules: Path) -> str:
    """ops/prometheus/prometheus.yml with this checkout's web address, vhost and rules."""
    return (
        template.replace('"127.0.0.1:8000"', f'"{web}"')
        .replace('vhost: ["/"]', f"vhost: [{vhost!r}]".replace("'", '"'))
        .replace("  - alerts.yml", f"  - {rules}")
    )


def prometheus_entry(directory: Path) -> tuple[str, str] | None:
    """The Prometheus program (and its configuration, written into ``directory``), or None when
    Prometheus is not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        print("supervise: Prometheus is not installed (scripts/setup.sh installs it); starting without it.")
        return None
    host = os.environ.get("PASSLINE_HOST", "127.0.0.1")
    web = f"{'127.0.0.1' if host in {'0.0.0.0', '::', ''} else host}:{os.environ.get('PASSLINE_PORT', '8000')}"  # nosec B104 - a comparison
    # Every node of a cluster (RABBITMQ_URLS) has the one vhost: the first's.
    broker = _setting("RABBITMQ_URLS", "").split(",")[0].strip() or _setting(
        "RABBITMQ_URL", "amqp://127.0.0.1:5672/%2F"
    )
    vhost = unquote(urlsplit(broker).path[1:]) or "/"
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    ops = ROOT / "ops" / "prometheus"
    config.write_text(
        prometheus_config((ops / "prometheus.yml").read_text(), web=web, vhost=vhost, rules=ops / "alerts.yml")
    )
    port = _setting("PROMETHEUS_PORT", "9090")
    command = shlex.join(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
    )
    return ("prometheus", command)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procfile", type=Path, default=ROOT / "Procfile")
    parser.add_argument(
        "--dir",
        type=Path,
        default=ROOT / "var" / "supervisor",
        help="where the configuration, the control socket and supervisord's own log go",
    )
    parser.add_argument("--write-only", action="store_true", help="write the configuration and exit")
    parser.add_argument("--no-prometheus", action="store_true", help="the Procfile's processes only")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "supervisord.conf"
    entries = procfile_entries(args.procfile.read_text())
    if not args.write_only:
        metrics_dir()
    prometheus = None if args.no_prometheus else prometheus_entry(ROOT / "var" / "prometheus-server")
    if prometheus is not None:
        entries.append(prometheus)
    conf.write_text(supervisord_conf(entries, directory=directory, workdir=ROOT, web=web_settings()))
    if args.write_only:
        print(conf)
        return
    supervisord = Path(sys.executable).parent / "supervisord"
    os.execv(supervisord, [str(supervisord), "--nodaemon", "--configuration", str(conf)])


if __name__ == "__main__":
    main()
