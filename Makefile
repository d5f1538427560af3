# KI-Post — the two commands of the README:
#   make run    install (virtualenv .venv) and start the app on http://127.0.0.1:5000
#   make test   install the test tools and run the whole suite
PYTHON ?= python3
NPM ?= npm
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test worker bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/flask --app app run --host $(HOST) --port $(PORT)

# ical.js (Mozilla's iCalendar parser) for the calendar tests, pinned in tests/package-lock.json.
tests/node_modules/.package-lock.json: tests/package.json tests/package-lock.json
	@if command -v $(NPM) >/dev/null; then $(NPM) ci --prefix tests --no-audit --no-fund --silent; \
	else echo "npm fehlt: die Prüfung mit ical.js wird übersprungen (apt-get install nodejs npm)"; fi

# One test process per core (PYTEST_ARGS=-n0 for a single one, e.g. with a debugger).
test: $(VENV)/.installed-dev tests/node_modules/.package-lock.json
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

worker: $(VENV)/.installed
	$(BIN)/flask --app app outbox work

bench: $(VENV)/.installed-dev
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache tests/node_modules
