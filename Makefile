# The two commands: `make run` and `make test`. Everything they need is set up first.
# `make test` runs `make lint` (ruff and mypy, settings in pyproject.toml) before the suite.
SHELL := /bin/bash
PY := .venv/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
export PASSLINE_PORT := $(PORT)
export PASSLINE_HOST := $(HOST)

.PHONY: run test lint audit setup setup-test demo bench chaos clean

setup:
	@scripts/setup.sh run

setup-test:
	@scripts/setup.sh test

demo: setup
	@PASSLINE_DB_OWNER=1 $(PY) manage.py migrate --noinput -v0
	@$(PY) manage.py collectstatic --noinput -v0
	@$(PY) manage.py declare_topology --recreate-empty
	@$(PY) manage.py seed_demo

run: demo
	@$(PY) manage.py banner --url http://$(HOST):$(PORT)/
	@exec $(PY) scripts/supervise.py

lint: setup-test
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@PASSLINE_ENV=test .venv/bin/mypy .

# Known vulnerabilities in the pinned dependencies (pip-audit) and a static security scan (bandit).
audit: setup-test
	@$(PY) scripts/security_audit.py

test: lint audit
	@PASSLINE_ENV=test $(PY) -m pytest --create-db $(PYTEST_ARGS)

bench:
	@scripts/setup.sh bench
	@PASSLINE_DB_OWNER=1 $(PY) manage.py migrate --noinput -v0
	@$(PY) -m bench.bus $(BENCH_ARGS)
	@$(PY) -m bench.billing
	@$(PY) -m bench.live $(LIVE_BENCH_ARGS)
	@$(PY) -m bench.layer
	@$(PY) -m bench.load $(LOAD_BENCH_ARGS)
	@$(PY) -m bench.report

# The chaos soak (bench/chaos.py): CHAOS_MINUTES (10) of orders while processes and private
# servers are killed at random, then an audit; CHAOS_ARGS for more (python -m bench.chaos --help).
chaos:
	@scripts/setup.sh bench
	@PASSLINE_DB_OWNER=1 $(PY) manage.py migrate --noinput -v0
	@$(PY) -m bench.chaos $(CHAOS_ARGS)

clean:
	rm -rf .venv var .pytest_cache
