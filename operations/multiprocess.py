"""prometheus_client in multiprocess mode: every process of the Procfile writes its metrics to
memory-mapped files in one directory (``PROMETHEUS_MULTIPROC_DIR``), and the web process's
``/metrics`` adds them all up (operations/metrics.py).

Why one directory rather than a port per process: the workers and the relay are plain
``manage.py`` commands with no HTTP server, copies of one role come and go under the
supervisor (or compose's ``scale``), and Prometheus then needs to know one address, the web's,
never a list of ports. The price: the processes must share the directory (a shared volume in
compose), and a process's files outlive it.

Files are named after the process: ``<host>-<pid>`` here, not the library's bare pid, because
in compose every container's main process is pid 1 and the containers share the volume.

A process that ends leaves its counters and histograms in place (their totals must not fall),
but its live gauges (``livesum``: open sockets) must go: each process removes its own at exit,
one that was killed has them removed at the next scrape when it ran on the web's host (its pid
is gone), and a process starting under a name a dead one had (compose restarts a container as
pid 1 again) first removes what that one left.

This module is imported by the settings, before any metric exists: it only touches
prometheus_client and the file system.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import socket
from pathlib import Path

from prometheus_client import multiprocess, values

_HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
_LIVE_MODES = ("liveall", "livesum", "livemax", "livemin", "livemostrecent")


def process_identifier() -> str:
    """This process's name in the files' names (no ``_``: the collector splits names on it)."""
    return f"{_HOST}-{os.getpid()}"


def configure(directory: str | Path) -> Path:
    """Put this process in multiprocess mode, writing to ``directory`` (created if missing).

    Must run before the first metric is created (metrics choose how they store their value
    when they are created): the settings call it.
    """
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    values.ValueClass = values.MultiProcessValue(process_identifier)
    # A dead process that had this name (a restarted container) left its live gauges behind.
    multiprocess.mark_process_dead(process_identifier(), str(path))
    atexit.register(_at_exit, str(path))
    return path


def _at_exit(path: str) -> None:
    try:
        multiprocess.mark_process_dead(process_identifier(), path)
    except OSError:
        pass  # the directory went first (a test's temporary one)


def remove_dead_local(path: str) -> list[str]:
    """Remove the live gauges of processes of this host that are gone; their names."""
    gone = []
    for mode in _LIVE_MODES:
        for file in glob.glob(os.path.join(path, f"gauge_{mode}_{_HOST}-*.db")):
            pid = file.rsplit("-", 1)[-1].removesuffix(".db")
            if pid.isdigit() and not pid_alive(int(pid)):
                gone.append(f"{_HOST}-{pid}")
    for name in set(gone):
        multiprocess.mark_process_dead(name, path)
    return sorted(set(gone))


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that pid runs (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, alive
    return True
