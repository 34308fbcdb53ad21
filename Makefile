# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test setup system-deps db serve bench bench-web clean

# Debian packages (PostgreSQL server, chromium, fonts, WeasyPrint libraries): installed
# only when missing, so this is instant on a prepared machine.
system-deps:
	bash scripts/system-deps.sh

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

setup: system-deps $(BIN)/.installed

db: setup
	$(FLASK) init-db
	$(FLASK) seed-demo

# Set-up, demo data on first run, then the service on http://127.0.0.1:$(PORT): web,
# scheduler and mail sink under supervisord (scripts/run.sh, scripts/supervisord.conf).
# A busy port is named before the migrations and the seeding, and again by run.sh.
run: setup
	@$(BIN)/python -m returnprog.ports $(PORT) >/dev/null
	@$(MAKE) --no-print-directory db
	bash scripts/run.sh $(PORT)

test: setup
	$(BIN)/python -m pytest -n 2

bench: setup
	$(BIN)/python bench/bench_core.py

# Issue 11's web benchmark: wrk against `make run`'s gunicorn and a bare Flask route, with
# 150,000 cases, on SQLite and PostgreSQL (BENCH_WEB_ARGS="--backend sqlite" etc.).
bench-web: setup
	$(BIN)/python bench/bench_web.py $(BENCH_WEB_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
