# Releasegate — `make run` serves the demo on the embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format check bench-ingest bench-gate-latency bench-poll bench-pages bench-scale clean

# Create the virtual environment and install the pinned dependencies (re-run only when pyproject.toml changes).
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

# Migrate, load the demo portfolio (idempotent) and serve web + worker + beat on the embedded broker.
# HOST and PORT choose the address (`make run PORT=8080`); links in the demo's e-mails follow them.
run: export SITE_URL ?= http://$(if $(filter 0.0.0.0,$(HOST)),localhost,$(HOST)):$(PORT)
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python scripts/run_all.py --host $(HOST) --port $(PORT)

# Run the whole test suite (PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set).
test: install
	$(BIN)/python -m pytest -p no:cacheprovider

# Lint, check formatting and the app layers (import-linter contracts in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Format the code.
format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Django's system checks and the migrations check.
check: install
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

# Ingest benchmark on PostgreSQL: pipeline-run posts vs a bare Django app and a baseline view (docs/benchmarks-ingest.md).
bench-ingest: install
	$(BIN)/python benchmarks/ingest.py $(BENCH_ARGS)

# Gate latency: CI post to stored verdict, idle and under half the ingest capacity (docs/benchmarks-ingest.md).
bench-gate-latency: install
	$(BIN)/python benchmarks/gate_latency.py $(BENCH_ARGS)

# Poll 500 stub CI integrations (50–500 ms, 5% errors): sweep time vs ideal and retry share.
bench-poll: install
	$(BIN)/python benchmarks/poll.py $(BENCH_ARGS)

# Pages at 1× and 100× seed_scale data: server time (median, p95), queries, ratio (docs/benchmarks-pages.md).
bench-pages: install
	$(BIN)/python benchmarks/pages.py $(BENCH_ARGS)

# Capacity: run posts/s of 1 and 2 web replicas behind nginx, tasks/s of 1 and 2 workers (docs/operations.md).
bench-scale: install
	$(BIN)/python benchmarks/scale.py $(BENCH_ARGS)

# Remove the local database, broker folder and collected static files.
clean:
	rm -rf var staticfiles
