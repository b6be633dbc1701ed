# Every target that needs the virtualenv depends on it, so `make run` or `make test`
# works as the first command on a fresh clone.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install run test test-unit test-integration test-e2e lint docs migrate bench up down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	touch $@

run: install migrate
	$(BIN)/worker run

migrate: install
	$(BIN)/worker db upgrade

# Test files run in TEST_WORKERS processes (pytest-xdist), a whole file to one process so
# its module fixtures are built once; most of the suite waits on brokers and workers, so two
# processes nearly halve it even on two cores. TEST_WORKERS=0 runs everything in this one.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadfile

test: install
	$(BIN)/pytest $(PARALLEL) $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest -m integration $(PARALLEL) $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/pytest -m e2e $(PARALLEL) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check worker contracts fca_client tests bench testkit
	$(BIN)/ruff format --check worker contracts fca_client tests bench testkit
	$(BIN)/python -m contracts.docs --check
	$(BIN)/mypy --strict worker contracts fca_client

docs: install
	$(PY) -m contracts.docs

bench: install
	$(PY) -m bench $(BENCH_ARGS)

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache worker.db
