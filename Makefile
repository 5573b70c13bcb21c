# webchat: `make run` serves the demo, `make test` runs the whole suite.
# Both set up what they need: a virtualenv in .venv, the pinned requirements, the compiled
# translations and (for run) the database with demo data.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` is the demo/development server: debug pages on unless you say otherwise.
DEBUG ?= True
export DEBUG

.PHONY: run test test-production-stack setup test-setup assets clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-test: requirements-test.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.requirements

# Compiled .mo files and collected static files are build output (git-ignored).
assets: $(VENV)/.requirements
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext >/dev/null)
	$(BIN)/python manage.py compilemessages --ignore=.venv -v0
	$(BIN)/python -m pygments -S friendly -f html -a .highlight > static/css/pygments.css
	$(BIN)/python manage.py collectstatic --no-input -v0

setup: $(VENV)/.requirements assets
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py seed_demo

run: setup
	HOST=$(HOST) PORT=$(PORT) bash scripts/run-embedded.sh

test-setup: $(VENV)/.requirements-test assets
	bash scripts/test-services.sh

# First the import contracts (pyproject.toml: apps import each other one way only, never
# another app's views or consumers). Then the whole suite twice: on the embedded default
# (SQLite, in-memory layer, file broker), then on real PostgreSQL and Redis servers that
# scripts/services.sh installs and starts on 127.0.0.1 (the concurrency and multi-process
# tests need them).
test: test-setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-production-stack

test-production-stack: test-setup
	DATABASE_URL=$$(FAST=1 bash scripts/services.sh postgres) REDIS_URL=$$(bash scripts/services.sh redis) \
		$(BIN)/python -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) .cache var staticfiles
