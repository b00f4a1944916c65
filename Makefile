# Two entry points for a new user: `make demo` (the main job) and `make test`.
# Each creates .venv on first use and reuses it afterwards.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $(DOCS_STAMP)

.PHONY: install demo test test-all lint docs
install: $(STAMP)

demo: $(STAMP)
	$(BIN)/routeplan pipeline run examples/model_routing_demo.yaml -i task_budget=5 -i priority=cost

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m ''

lint: $(STAMP)
	$(BIN)/ruff check .

# the documentation site (docs/, mkdocs.yml) into site/; --strict: a broken link fails
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
