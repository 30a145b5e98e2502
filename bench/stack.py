"""The whole application in production mode, for the load benchmark: the web servers and every
worker of the Procfile, on the benchmark's own database, vhost and Redis prefixes.

``PASSLINE_ENV=production`` (DEBUG off, no ``.env``: the database password is handed over
explicitly), one or more web processes — daphne, the specified server, or uvicorn, for the
comparison — either sharing one listening socket, as ``make run`` runs them (supervisord's
fcgi-program, scripts/supervise.py: the kernel spreads the connections), or each on a port of
its own, optionally with nginx in front of them as the load balancer (Debian's package, with a
configuration of the run's own). The workers are the Procfile's lines, so the benchmark runs
exactly what ``make run`` runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import common
from bench.harness import HOST, Processes, free_port, port_open, raise_open_files

PREFIX = "passline-bench-load"
BENCH_RATE = "100000/min"
BENCH_LIMITED = ("API_USER", "API_IP", "ORDERS", "ORDERS_IP", "MONEY", "MONEY_IP", "LOGIN", "REGISTER")
SERVERS = ("daphne", "uvicorn")


def dotenv_value(name: str) -> str:
    """A value of the set-up's ``.env`` (production settings never read that file)."""
    path = common.ROOT / ".env"
    for line in path.read_text().splitlines() if path.is_file() else []:
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip().strip("'\"")
    return os.environ.get(name, "")


def production_env(**extra: str) -> dict[str, str]:
    """Production settings on the benchmark's database; ``extra`` overrides any of them."""
    settings = common.bench_env(
        PASSLINE_ENV="production",
        DEBUG="0",
        SECRET_KEY=dotenv_value("SECRET_KEY") or common.new_id(),
        DB_PASSWORD=dotenv_value("DB_PASSWORD"),
        DB_OWNER_USER=dotenv_value("DB_OWNER_USER"),
        DB_OWNER_PASSWORD=dotenv_value("DB_OWNER_PASSWORD"),
        # The benchmark's customers top up with the simulated provider's test cards: a demo.
        PASSLINE_DEMO="1",
        PAYMENT_WEBHOOK_SECRET=common.new_id() + common.new_id(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # TLS would be terminated by the load balancer in front; the benchmark speaks plain HTTP.
        SECURE_SSL_REDIRECT="0",
        CHANNELS_PREFIX=PREFIX,
        CACHE_PREFIX=PREFIX,
        # The paid orders' acceptance time-outs would come back as a burst of refunds ten
        # minutes after each run; no kitchen works the benchmark's orders.
        ORDER_ACCEPT_TIMEOUT_SECONDS="86400",
        # The rate limits are for people (20 orders an hour an account): the benchmark's few
        # customers place thousands. Each request still pays for its throttle's check.
        **{f"RATE_LIMIT_{name}": BENCH_RATE for name in BENCH_LIMITED},
    )
    return {**settings, **extra}


def procfile_workers() -> list[tuple[str, list[str]]]:
    """Every process of the Procfile but the web server, as (name, argv)."""
    workers = []
    for line in (common.ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if not command.strip() or name.strip() == "web" or line.lstrip().startswith("#"):
            continue
        argv = command.split()
        if argv[0].endswith("/python"):
            argv[0] = sys.executable
        workers.append((name.strip(), argv))
    return workers


class Stack:
    """The workers (:meth:`start_workers`, once) and a set of web servers in front of them
    (:meth:`start_web`, :meth:`stop_web`, to compare servers and counts on the same workers).
    :attr:`url` is where clients go: nginx's port when it runs, else the one server's.
    ``env`` is added to every process's environment (the chaos soak's private servers);
    :meth:`kill` and :meth:`restart` take one process down and up again by its name."""

    def __init__(self, processes: Processes, **env: str) -> None:
        self.processes = processes
        self.env = env
        self.server, self.web, self.nginx = "daphne", 0, False
        self.ports: list[int] = []
        self.port = 0
        self.listener: socket.socket | None = None  # the web processes' shared socket
        self.named: dict[str, subprocess.Popen] = {}
        # How each named process was started (its log's name, its argv), to start it again.
        self.commands: dict[str, tuple[str, list[str]]] = {}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start_workers(self) -> Stack:
        self._run_once("migrate", "--noinput", "-v0")
        self._run_once("collectstatic", "--noinput", "-v0")
        self._run_once("declare_topology")
        for name, argv in procfile_workers():
            self.commands[name] = (name, argv)
            self.named[name] = self._start(name, argv)
        return self

    def start_web(
        self, *, server: str = "daphne", count: int = 1, nginx: bool | None = None, shared: bool = False
    ) -> str:
        """``count`` servers: with ``shared``, all on one listening socket, as ``make run`` runs
        them; else each on its own port, behind nginx when there are several (unless
        ``nginx=False``: the clients then pick a server themselves)."""
        if server not in SERVERS:
            raise SystemExit(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
        self.server, self.web = server, count
        if shared:
            return self._start_shared(count)
        self.nginx = count > 1 if nginx is None else nginx
        self.ports = [free_port() for _ in range(count)]
        for index, port in enumerate(self.ports):
            self.commands[f"web-{index + 1}"] = (f"{server}-{index + 1}", self._server_argv(port))
            self.named[f"web-{index + 1}"] = self._start(*self.commands[f"web-{index + 1}"])
        for index, port in enumerate(self.ports):
            self._wait_port(port, self.named[f"web-{index + 1}"], f"{server} on port {port}")
        if self.nginx:
            self.port = free_port()
            self.named["nginx"] = self._nginx()
            self._wait_port(self.port, self.named["nginx"], f"nginx on port {self.port}")
        else:
            self.port = self.ports[0]
        return self.url

    def _start_shared(self, count: int) -> str:
        """daphnes serving one socket opened here (``--fd``), as supervisord's fcgi-program
        hands its socket to ``make run``'s web processes."""
        self.nginx = False
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, 0))
        listener.listen(1024)
        self.listener = listener
        self.port = listener.getsockname()[1]
        self.ports = [self.port] * count
        for index in range(count):
            self.commands[f"web-{index + 1}"] = (f"daphne-{index + 1}", self._server_argv(0, fd=listener.fileno()))
            self.named[f"web-{index + 1}"] = self._start(
                *self.commands[f"web-{index + 1}"], pass_fds=(listener.fileno(),)
            )
        for index in range(count):
            self._wait_port(self.port, self.named[f"web-{index + 1}"], f"daphne {index + 1} on port {self.port}")
        return self.url

    def stop_web(self) -> None:
        for name in [n for n in self.named if n.startswith("web-") or n == "nginx"]:
            self.processes.stop(self.named.pop(name))
            self.commands.pop(name, None)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def kill(self, name: str) -> None:
        """kill -9 one process of the stack (and wait for it to be gone), as a crash would."""
        process = self.named[name]
        if process.poll() is None:
            process.kill()
        process.wait()

    def restart(self, name: str) -> subprocess.Popen:
        """Start a process of the stack again, as it was first started (a web server on its port,
        waited for until it listens)."""
        shared = (self.listener.fileno(),) if name.startswith("web-") and self.listener is not None else ()
        self.named[name] = self._start(*self.commands[name], pass_fds=shared)
        if name.startswith("web-"):
            port = self.ports[int(name.removeprefix("web-")) - 1]
            self._wait_port(port, self.named[name], f"{self.server} on port {port}")
        return self.named[name]

    def _server_argv(self, port: int, fd: int | None = None) -> list[str]:
        bin_dir = Path(sys.executable).parent
        if self.server == "daphne":
            return [
                str(bin_dir / "daphne"),
                *(["--fd", str(fd)] if fd is not None else ["-b", HOST, "-p", str(port)]),
                "--proxy-headers",
                "passline.asgi:application",
            ]
        # One process per port (never --workers: uvicorn's workers lose TCP_NODELAY on accepted
        # sockets, ~40 ms more per keep-alive request); no access log, as daphne logs at WARNING.
        return [
            str(bin_dir / "uvicorn"),
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-access-log",
            "--proxy-headers",
            "--ws",
            "websockets",
            "passline.asgi:application",
        ]

    def _start(self, name: str, argv: list[str], pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
        log = open(self.processes.dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            argv,
            cwd=common.ROOT,
            env=production_env(**self.env),
            stdout=log,
            stderr=log,
            preexec_fn=raise_open_files,
            pass_fds=pass_fds,
        )
        self.processes.children.append((name, process))
        return process

    def _run_once(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=common.ROOT,
            env=production_env(**self.env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")

    def _wait_port(self, port: int, process: subprocess.Popen, what: str) -> None:
        common.wait_for(lambda: port_open(port) or process.poll() is not None, 60, what, 0.1)
        if process.poll() is not None:
            raise SystemExit(f"{what} exited; see {self.processes.dir}")

    def _nginx(self) -> subprocess.Popen:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is not installed (Debian: apt-get install nginx); `make bench` installs it")
        root = self.processes.dir / "nginx"
        (root / "logs").mkdir(parents=True, exist_ok=True)
        upstream = "\n".join(f"    server {HOST}:{port};" for port in self.ports)
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(upstream=upstream, port=self.port, root=root))
        log = open(self.processes.dir / "nginx.log", "ab")
        process = subprocess.Popen(
            [binary, "-p", str(root), "-c", str(conf), "-g", "daemon off;"], stdout=log, stderr=log
        )
        self.processes.children.append(("nginx", process))
        return process

    def _processes(self) -> dict[str, list[Any]]:
        """psutil processes by name: the stack's own (with their children) and the three servers."""
        import psutil

        found: dict[str, list[Any]] = {}
        for name, process in self.named.items():
            try:
                root = psutil.Process(process.pid)
                found[name] = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
        for server in psutil.process_iter(["name"]):
            service = SERVICES.get(server.info["name"] or "")
            if service:
                found.setdefault(service, []).append(server)
        return found

    def memory(self) -> dict[str, float]:
        """Resident memory of every process of the stack and of the servers now, in MiB."""
        import psutil

        figures: dict[str, float] = {}
        for name, group in self._processes().items():
            try:
                figures[name] = round(sum(p.memory_info().rss for p in group) / 2**20, 1)
            except psutil.Error:
                continue
        return figures

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each process (and server) has used so far."""
        import psutil

        figures: dict[str, float] = {}
        for name, group in self._processes().items():
            try:
                figures[name] = round(sum(sum(p.cpu_times()[:2]) for p in group), 2)
            except psutil.Error:
                continue
        return figures

    @contextlib.contextmanager
    def workers_paused(self):
        """Stop every worker (SIGSTOP) for the block, then let them go on (SIGCONT): the web tier
        alone takes the load while the outbox and the queues hold what the workers do later."""
        workers = [p for name, p in self.named.items() if not name.startswith("web-") and name != "nginx"]
        for process in workers:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in workers:
                process.send_signal(signal.SIGCONT)

    def describe(self) -> dict[str, Any]:
        balancer = "nginx" if self.nginx else "shared socket" if self.listener is not None else None
        return {"server": self.server, "web_processes": self.web, "load_balancer": balancer}


# The servers on the same machine, by process name: their CPU and memory are part of the cost.
SERVICES = {"mariadbd": "mariadb", "beam.smp": "rabbitmq", "redis-server": "redis"}

# Round robin over the web processes, keep-alive to them, WebSocket upgrades passed through.
NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream passline {{
{upstream}
    keepalive 512;
  }}
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://passline;
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }}
  }}
}}
"""
