# Two commands do everything on a fresh machine with Python 3.11:
#   make run   - virtualenv, install, migrate, demo data, development server on http://127.0.0.1:8000
#   make test  - virtualenv, install, the test suite (SQLite, or PostgreSQL when DATABASE_URL is set)
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_LOANS ?= 2000
PORT ?= 8000

.PHONY: run test install assets lint migrate demo demo-reset bench-delinquency bench-scan bench-api bench-web clean

$(BIN)/python:
	$(shell command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet '.[dev]'
	touch $@

# Browser assets come from npm (package-lock.json pins them) into static files: no CDN at run time.
VENDOR := collections_site/static/vendor
$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/
	touch $@

assets: $(VENDOR)/.installed

install: $(VENV)/.installed assets

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	@if $(BIN)/python manage.py shell -c "from loans.models import Loan; import sys; sys.exit(0 if Loan.objects.exists() else 1)"; then \
		echo "demo data already loaded (make demo-reset to rebuild it)"; \
	else \
		$(BIN)/python manage.py seed_demo --loans $(DEMO_LOANS) --seed 42 && \
		$(BIN)/python manage.py demo_collections && \
		$(BIN)/python manage.py snapshot_buckets --months 6; \
	fi

demo-reset: migrate
	$(BIN)/python manage.py demo_collections --clear
	$(BIN)/python manage.py seed_demo --loans $(DEMO_LOANS) --seed 42 --reset
	$(BIN)/python manage.py demo_collections
	$(BIN)/python manage.py snapshot_buckets --months 6

run: demo
	$(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

bench-delinquency: install
	$(BIN)/python bench/delinquency.py

bench-scan: install
	$(BIN)/python bench/scan.py

bench-api: install
	$(BIN)/python -m pip install --quiet '.[bench]'
	$(BIN)/python bench/api.py --reuse

bench-web: install
	$(BIN)/python bench/api.py --build-only --reuse
	$(BIN)/python bench/web.py --reuse

clean:
	rm -rf $(VENV) node_modules $(VENDOR) db.sqlite3 staticfiles .pytest_cache .hypothesis .ruff_cache
