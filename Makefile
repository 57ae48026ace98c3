# Every target bootstraps .venv itself, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MESH_DATA_DIR ?= $(CURDIR)/.mesh
PORT ?= 3000
# The git ref `make check` compares contracts with.
BASE ?= main

.PHONY: dev test bench soak install sample-data clean check schema

$(BIN)/mesh: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/mesh
	@$(BIN)/mesh prepare-dbt

sample-data: install
	@test -f $(MESH_DATA_DIR)/sources/customers/customers.csv || $(BIN)/mesh sample-data

$(DAGSTER_HOME)/dagster.yaml: deploy/dagster.local.yaml
	mkdir -p $(DAGSTER_HOME)
	cp deploy/dagster.local.yaml $@

dev: sample-data $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml -p $(PORT)

test: install
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=15 tests

# Governance: the global policies, and no unversioned breaking contract change since $(BASE).
check: install
	$(BIN)/mesh validate
	$(BIN)/mesh contract-diff --base $(BASE)

# The contracts' JSON Schemas for editors (docs/schema/) and their reference (docs/contract.md),
# made from platform_lib/contract.py.
schema: install
	$(BIN)/python -m platform_lib.contract_schema

bench: install
	@for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The long soak: random kills and bad rows across many rounds (tests run a short one).
soak: install
	MESH_SOAK_ROUNDS=$${MESH_SOAK_ROUNDS:-300} $(BIN)/pytest -q tests/reliability/test_soak.py

clean:
	rm -rf $(MESH_DATA_DIR) $(DAGSTER_HOME)
