PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install migrate demo test lint fmt worker beat clean

# These targets are for a development machine: with DEBUG on, the service starts without
# SECRET_KEY and AUDIT_SIGNING_KEY (using development keys, with a warning), which outside
# DEBUG it refuses to. Set DEBUG=false, with both keys, to run them as production does.
run migrate demo worker beat: export DEBUG ?= true

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py setup_roles
	$(PY) manage.py collectstatic --noinput -v0

demo: migrate
	$(PY) manage.py seed_demo

run: demo
	@echo "Serving on http://$(HOST):$(PORT)/  (admin: /admin/, API docs: /api/docs/)"
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install
	@# makemigrations also runs the system checks. A checkout has no production keys, so
	@# they run as on a development machine; tests/test_startup_checks.py starts the
	@# service without them and shows it refuse.
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run
	$(PY) -m pytest
	@# The audit log's triggers are also proven on SQLite when the main run is elsewhere.
	@if [ -n "$$DATABASE_URL" ]; then DATABASE_URL= $(PY) -m pytest -m "sqlite and not postgres" -q; fi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

worker: install
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: install
	$(VENV)/bin/celery -A config beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3* media staticfiles
