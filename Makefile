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

.PHONY: run test test-production-stack setup test-setup assets frontend clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.requirements: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.requirements-test: requirements-test.txt requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@ $(VENV)/.requirements

# The chat page's third-party browser code (markdown-it, DOMPurify; axe-core for the tests),
# exactly as package-lock.json pins it. node_modules/ is git-ignored.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

frontend: node_modules/.installed

# Compiled .mo files and collected static files are build output (git-ignored).
assets: $(VENV)/.requirements node_modules/.installed
	@command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext >/dev/null)
	$(BIN)/python manage.py compilemessages --ignore=.venv -v0
# xcode: the light style whose every token colour keeps 4.5:1 on a light background (axe's check; friendly's did not).
	$(BIN)/python -m pygments -S xcode -f html -a .highlight > static/css/pygments.css
# Every page loads both; only the rules under [data-theme=dark] (the unscoped pre/linenos ones would win in light too).
	$(BIN)/python -m pygments -S github-dark -f html -a "[data-theme=dark] .highlight" | grep '^\[data-theme=dark\]' > static/css/pygments-dark.css
	$(BIN)/python manage.py collectstatic --no-input -v0

setup: $(VENV)/.requirements frontend assets
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py seed_demo

run: setup
	HOST=$(HOST) PORT=$(PORT) bash scripts/run-embedded.sh

test-setup: $(VENV)/.requirements-test frontend assets
	bash scripts/test-services.sh

# First lint and format (ruff), and the import contracts (pyproject.toml: apps import each
# other one way only, never another app's views or consumers). Then the suite on the embedded default
# (SQLite, in-memory layer, file broker) and on real PostgreSQL and Redis servers that
# scripts/services.sh installs and starts on 127.0.0.1 (the concurrency and multi-process
# tests need them). The browser tests (tests/e2e/) drive pages that are the same on both and
# run once, on SQLite, in a run of their own. The three runs go side by side: much of each
# waits on sockets, timers and the browser, and two runs left a fifth of both cores idle.
# The SQLite run's output comes as it runs, the other two's after it. Tests marked
# backend_free (their own subprocesses or sockets, no database: tests/conftest.py) run in
# the SQLite run only.
# `make test-production-stack` and a plain `pytest` run every test.
test: test-setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	@SAME_ON_EVERY_BACKEND=once $(PRODUCTION_STACK_PYTEST) --ignore=tests/e2e > var/test-production-stack.log 2>&1 & stack=$$!; \
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e > var/test-browser.log 2>&1 & browser=$$!; \
	$(BIN)/python -m pytest --ignore=tests/e2e; embedded=$$?; \
	wait $$browser; browsed=$$?; wait $$stack; production=$$?; \
	echo; echo "=== the browser tests (SQLite) ==="; cat var/test-browser.log; \
	echo; echo "=== the same suite on PostgreSQL + Redis ==="; cat var/test-production-stack.log; \
	exit $$(( embedded || browsed || production ))

PRODUCTION_STACK_PYTEST = DATABASE_URL=$$(FAST=1 bash scripts/services.sh postgres) \
	REDIS_URL=$$(bash scripts/services.sh redis) $(BIN)/python -m pytest -p no:cacheprovider

test-production-stack: test-setup
	$(PRODUCTION_STACK_PYTEST)

clean:
	rm -rf $(VENV) .cache var staticfiles node_modules
