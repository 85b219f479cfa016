# The front door: `make run` serves the API on the embedded stack, `make test` proves it.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
EMU := .venv-emu
PY := $(VENV)/bin/python

.PHONY: install browser run up down status test test-unit test-integration test-e2e lint clean deploy deploy-localstack deploy-endpoint \
	dlq-redrive sweep bench

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -c constraints-dev.txt
	@# the pix-payouts console script, from this tree (editable; its dependencies are pinned above)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(EMU)/.installed: requirements-emulator.txt constraints-emulator.txt
	$(PYTHON) -m venv $(EMU)
	$(EMU)/bin/pip install -q --disable-pip-version-check -r requirements-emulator.txt -c constraints-emulator.txt
	touch $@

install: $(VENV)/.installed $(EMU)/.installed

# The /docs page test opens the page in headless Chromium (Debian's package; installing it needs root).
browser:                ## install Chromium when it is missing
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; }

# The embedded stack's functions pay through the Efí adapter and the local PSP; PIX_STACK_PROVIDER=sandbox picks the
# in-database sandbox instead (infra/README.md, "In the embedded stack").
run: install            ## install everything, deploy to the embedded stack, serve until Ctrl-C
	$(PY) infra/stack.py serve

up: install             ## the same in the background; returns once the API answers
	$(PY) infra/stack.py up

down:                   ## stop everything `up` started
	@if [ -x $(PY) ]; then $(PY) infra/stack.py down; fi

status:
	$(PY) infra/stack.py status

dlq-redrive: $(VENV)/.installed   ## reopen RETRIES_EXHAUSTED payouts, move dead letters back (embedded stack, or the env's)
	@eval "$$($(PY) infra/stack.py env 2>/dev/null)"; $(VENV)/bin/pix-payouts dlq-redrive $(if $(BATCH_ID),--batch-id $(BATCH_ID))

sweep: $(VENV)/.installed         ## run the sweeper once now
	@eval "$$($(PY) infra/stack.py env 2>/dev/null)"; $(VENV)/bin/pix-payouts sweep

test: install browser   ## unit, integration, then end-to-end on the embedded stack
	$(PY) -m pytest

test-unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit

test-integration: $(VENV)/.installed
	$(PY) -m pytest tests/integration

test-e2e: install browser
	$(PY) -m pytest tests/e2e

# Starts the embedded stack on the sandbox provider if `infra/stack.py status` is not healthy or it runs another one,
# measures ingest/settle/read/memory/scaling against their floors (bench/run.py; settle_latency on efi), writes
# bench/results/latest.json and a dated copy, and puts back what it found: it stops again only what it started.
# BENCH_ARGS passes options, e.g. BENCH_ARGS=--concurrent.
bench: install          ## benchmark on the embedded stack; prints a table, exit 0 even when a target is missed
	$(PY) -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.installed   ## ruff, ruff format, mypy (strict for app.py, chalicelib/ and the stack tooling), import contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

# AWS: needs credentials, DATABASE_SECRET_ARN (Secrets Manager, preferred) or DATABASE_URL, and for a private database
# SUBNET_IDS/SECURITY_GROUP_IDS (comma-separated). STACK_NAME and CHALICE_STAGE pick the stage. MIGRATE_URL: where
# this machine reaches the database to migrate it (default: the database URL); SKIP_MIGRATIONS=1 skips that.
# Settings of the README's configuration table set in the environment become the stack's parameters.
STACK_NAME ?= pix-payouts
CHALICE_STAGE ?= dev
deploy: $(VENV)/.installed
	@test -n "$(DATABASE_SECRET_ARN)$(DATABASE_URL)" || { echo "set DATABASE_SECRET_ARN (or DATABASE_URL)"; exit 2; }
	$(PY) infra/stack.py deploy --database-secret-arn "$(DATABASE_SECRET_ARN)" --database-url "$(DATABASE_URL)" \
		--migrate-url "$(MIGRATE_URL)" --stack-name $(STACK_NAME) \
		--chalice-stage $(CHALICE_STAGE) --subnet-ids "$(SUBNET_IDS)" --security-group-ids "$(SECURITY_GROUP_IDS)" \
		$(if $(SKIP_MIGRATIONS),--skip-migrations)

# LocalStack + PostgreSQL from docker-compose.yml, then `deploy-endpoint`: the deploy step alone, against any emulator
# (tests/e2e/test_deploy.py runs it against the embedded MiniStack with a stack and a database of its own).
LOCALSTACK_ENDPOINT ?= http://127.0.0.1:4566
LOCALSTACK_DATABASE_URL ?= postgresql://postgres:postgres@postgres:5432/postgres
LOCALSTACK_MIGRATE_URL ?= postgresql://postgres:postgres@127.0.0.1:5433/postgres
deploy-localstack: $(VENV)/.installed   ## needs Docker: LocalStack 4.14.0 + PostgreSQL from docker-compose.yml
	docker compose up -d --wait
	$(MAKE) --no-print-directory deploy-endpoint

deploy-endpoint: $(VENV)/.installed
	$(PY) infra/stack.py deploy --endpoint "$(LOCALSTACK_ENDPOINT)" --stack-name $(STACK_NAME) \
		--database-url "$(LOCALSTACK_DATABASE_URL)" --migrate-url "$(LOCALSTACK_MIGRATE_URL)"

clean: down
	rm -rf build .stack $(VENV) $(EMU)
