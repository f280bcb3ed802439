# One entry point for humans and CI. Every target installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PACKAGES := -e shared -e gateway -e auth-service -e tenant-service -e ticket-service
SERVICES := auth_service tenant_service ticket_service
DATABASE_NAME ?= saas
export DATABASE_NAME

LINT_PATHS := shared gateway auth-service tenant-service ticket-service tests deploy conftest.py
MYPY_PACKAGES := shared/shared gateway/gateway auth-service/auth_service tenant-service/tenant_service ticket-service/ticket_service

.PHONY: help install lint servers db queues migrate keys seed run test backup restore bench bench-tools bench-events bench-auth bench-gateway bench-tickets drills clean

help:
	@echo "make run      - install, start servers, migrate, seed, run the stack on :8080 (Ctrl-C stops)"
	@echo "make test     - install, start servers, run the whole test suite"
	@echo "make lint     - ruff (ruff.toml) and mypy (mypy.ini: strict on shared/, checked on the services)"
	@echo "make migrate  - apply migrations (MIGRATE='status' | 'down 1' | 'new NAME' SERVICE=ticket_service)"
	@echo "make seed     - seed the demo organization into a running stack"
	@echo "make bench    - every benchmark; results are written under */bench/RESULTS.md"
	@echo "make drills   - fault drills against a running stack"
	@echo "make backup   - pg_dump (custom format) of DATABASE_NAME, or of one schema: BACKUP_SCHEMA=ticket"
	@echo "make restore  - FILE=backups/....dump [DATABASE_NAME=target]: roles and grants, then pg_restore"

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt shared/pyproject.toml gateway/pyproject.toml auth-service/pyproject.toml tenant-service/pyproject.toml ticket-service/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt setuptools
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-build-isolation -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	@touch $(STAMP)

servers:
	@bash deploy/ensure-servers.sh

db: install servers
	$(BIN)/python -m shared.dbsetup --database $(DATABASE_NAME)
	@$(MAKE) --no-print-directory migrate MIGRATE=up
	@$(MAKE) --no-print-directory queues

# Broker topology, like migrations: every consumer group's queues exist before anything publishes.
queues: install servers
	@for s in $(SERVICES) tenant_service.audit; do $(BIN)/python -m $$s declare-queues || exit 1; done

MIGRATE ?= up
SERVICE ?= $(SERVICES)
migrate: install servers
	@for s in $(SERVICE); do $(BIN)/python -m $$s migrate $(MIGRATE) || exit 1; done

keys: install
	$(BIN)/python -m auth_service keys ensure

seed: install
	$(BIN)/python deploy/seed.py

run: db keys
	$(BIN)/python deploy/run_local.py

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy $(MYPY_PACKAGES)

test: install servers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The load generator, wrk, comes from the distribution's packages like the servers.
bench-tools:
	@ENSURE_TOOLS=wrk bash deploy/ensure-servers.sh

bench: install bench-tools
	$(BIN)/python deploy/bench/load.py

bench-all: bench bench-events bench-auth bench-gateway bench-tickets bench-pgbouncer

bench-events: install servers
	$(BIN)/python shared/bench/relay_bench.py

bench-auth: install servers
	$(BIN)/python auth-service/bench/login_bench.py

bench-gateway: install bench-tools
	$(BIN)/python gateway/bench/hop_bench.py

bench-tickets: install servers
	$(BIN)/python ticket-service/bench/tickets_bench.py

BACKUP_DIR ?= backups
backup: install servers
	$(BIN)/python deploy/backup.py backup --database $(DATABASE_NAME) --dir $(BACKUP_DIR) $(if $(BACKUP_SCHEMA),--schema $(BACKUP_SCHEMA))

restore: install servers
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/<name>.dump [DATABASE_NAME=target]"; exit 2; }
	$(BIN)/python deploy/backup.py restore $(FILE) --database $(DATABASE_NAME)

clean:
	rm -rf $(VENV) .run

drills: install servers
	$(BIN)/python tests/drills.py

bench-pgbouncer: install servers
	$(BIN)/python deploy/bench/pgbouncer_bench.py
