# Back Exercise Coach: build, run and check.
#
#   make run     web + Celery worker + Celery beat on http://127.0.0.1:$(PORT)/
#   make test    the test suite (PYTEST_ARGS="..." passes options to pytest)
#   make check   lint, formatting, migrations, deploy checks, compose file
#
# Needs GNU make, bash and a Python >= 3.12 (found by scripts/find_python.sh;
# override with PYTHON=/path/to/python3.13).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PORT ?= 8000
PYTEST_ARGS ?=
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Dummy secrets so the production settings can load for `check --deploy`;
# never used to serve anything.
DEPLOY_CHECK_ENV := DJANGO_SETTINGS_MODULE=config.settings.production \
	SECRET_KEY=deploy-check-7fQ2xLr9Vd3Kp8Zt1Wm6Yb4Nc0Hs5Jg2Ue9Ra3Xq7Lw1Tz8Pk \
	ALLOWED_HOSTS=example.com

.PHONY: help venv run test check lint format lock chromium compose-check bench clean \
	bench-pages bench-reminders wrk

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The venv is (re)installed whenever the lock file changes. A venv built on a
# too-old Python is thrown away and rebuilt.
$(STAMP): requirements-dev.lock
	@if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then \
		python=$$(scripts/find_python.sh); \
		echo "Creating $(VENV) with $$python"; \
		rm -rf $(VENV); \
		"$$python" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $@

venv: $(STAMP) ## Create .venv and install requirements-dev.lock.

run: $(STAMP) ## Migrate, load the library and demo logins, then start web, worker and beat.
	@PORT=$(PORT) DJANGO_SETTINGS_MODULE=config.settings.local exec scripts/run_local.sh

# Browser tests drive Debian's Chromium (Playwright's own download does not
# work everywhere). Installed when missing and we are root; otherwise the
# browser tests fail and say why.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests (apt-get)..."; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# pytest reads its settings module from pyproject.toml; an exported
# DJANGO_SETTINGS_MODULE (say, from `make run` habits) would override it.
test: $(STAMP) chromium ## Run the tests (DATABASE_URL set: on PostgreSQL).
	env -u DJANGO_SETTINGS_MODULE DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and ruff format --check.
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Fix what ruff can fix and format the code.
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

check: lint ## lint + missing migrations + deploy checks + docker-compose.yml.
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run
	$(DEPLOY_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	@$(MAKE) --no-print-directory compose-check

# Load test (loadtest/): gunicorn on 127.0.0.1 with the production settings
# over plain HTTP, PostgreSQL (a fresh homeexercise_load database) and Redis,
# LOADTEST_USERS simulated patients (locust) for LOADTEST_SECONDS.
.PHONY: loadtest
LOADTEST_SECONDS ?= 60
LOADTEST_USERS ?= 50
loadtest: $(STAMP) ## 50 patients sign in, open today, log sessions for 60 s: throughput, p50/p95/p99, 0 errors.
	env -u DJANGO_SETTINGS_MODULE LOADTEST_SECONDS=$(LOADTEST_SECONDS) LOADTEST_USERS=$(LOADTEST_USERS) loadtest/run.sh

compose-check: ## Validate docker-compose.yml (installs docker-compose if root).
	@if ! command -v docker-compose >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing docker-compose to validate docker-compose.yml (apt-get)..."; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	fi
	@if command -v docker-compose >/dev/null 2>&1; then \
		scripts/compose_check.sh; \
	else \
		echo "docker-compose not installed: skipped validating docker-compose.yml"; \
	fi

lock: ## Re-pin requirements*.lock from pyproject.toml (pip-tools, throwaway venv).
	PYTHON="$$(scripts/find_python.sh)" scripts/lock.sh

# Benchmarks (bench/): gunicorn + wrk for the patient pages, real Celery
# workers and an SMTP sink for the reminders; every figure is also a ratio of a
# baseline measured in the same run. Results in bench/results/. wrk comes from
# Debian, installed when missing and we are root.
BENCH_SECONDS ?= 20
BENCH := env -u DJANGO_SETTINGS_MODULE BENCH_SECONDS=$(BENCH_SECONDS) $(PY) -m bench

wrk:
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing wrk for the page benchmarks (apt-get)..."; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi

bench: $(STAMP) wrk ## Benchmarks: pages and reminders (BENCH_SECONDS=5 for a quick run).
	$(BENCH) pages reminders

bench-pages: $(STAMP) wrk ## Page benchmarks only: throughput, latency, queries, page weight.
	$(BENCH) pages

bench-reminders: $(STAMP) ## Reminder benchmarks only: planning 100,000 patients, dispatch.
	$(BENCH) reminders

clean: ## Remove the venv, local database, broker files, collected static files and caches.
	rm -rf $(VENV) var staticfiles test-artifacts .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The staff review page and export at clinic scale (bench/review.py): builds a
# 10,000-patient, 90-day clinic (~4 million sessions) in its own PostgreSQL
# database, homeexercise_bench_review (BENCH_DB_SERVER to point elsewhere),
# then prints median timings against an indexed-query baseline. A few minutes.
.PHONY: bench-review
bench-review: $(STAMP) ## Review page and export on 10,000 patients (PostgreSQL; a few minutes).
	env -u DJANGO_SETTINGS_MODULE $(PY) -m bench.review
