"""scripts/supervise.py's configuration: the Procfile's web line as several processes on one
socket that supervisord opens, every other line a program of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.supervise import Web, procfile_entries, supervisord_conf, web_command, web_processes

PROCFILE = Path(__file__).resolve().parents[2] / "Procfile"


def test_the_web_line_serves_fd_0_instead_of_binding_an_address() -> None:
    command = (
        ".venv/bin/daphne -b ${PASSLINE_HOST:-127.0.0.1} -p ${PASSLINE_PORT:-8000} --proxy-headers app:application"
    )
    assert web_command(command) == ".venv/bin/daphne --fd 0 --proxy-headers app:application"


def test_a_web_line_without_an_address_is_refused() -> None:
    with pytest.raises(ValueError, match="-b <host> -p <port>"):
        web_command(".venv/bin/daphne --fd 3 app:application")


def test_the_real_procfile_makes_a_web_group_on_one_socket_and_a_program_per_worker(tmp_path: Path) -> None:
    entries = procfile_entries(PROCFILE.read_text())
    conf = supervisord_conf(
        entries, directory=tmp_path, workdir=tmp_path, web=Web(address="127.0.0.1:8123", processes=3)
    )
    web = conf[conf.index("[fcgi-program:web]") :].split("\n\n")[0]
    assert "socket=tcp://127.0.0.1:8123" in web
    assert "numprocs=3" in web
    assert "process_name=web-%(process_num)d" in web
    assert "--fd 0" in web and " -b " not in web and " -p " not in web
    assert 'environment=PASSLINE_PROCESS="web-%(process_num)d"' in web
    assert "[program:web]" not in conf
    workers = [name for name, _ in entries if name != "web"]
    assert workers and all(f"[program:{name}]" in conf for name in workers)


def test_web_processes_default_to_one_per_core_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEB_PROCESSES", "")
    monkeypatch.setattr("scripts.supervise.ROOT", Path("/nonexistent"))
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert web_processes() == 6
    monkeypatch.setenv("WEB_PROCESSES", "3")
    assert web_processes() == 3
    monkeypatch.setenv("WEB_PROCESSES", "0")
    with pytest.raises(SystemExit, match="at least 1"):
        web_processes()
