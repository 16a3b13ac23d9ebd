# The two commands of the README: `make demo` and `make test`.
# Both create .venv and install what they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k link"`.
PYTEST_ARGS ?=

.PHONY: demo test test-quick test-e2e test-slow lint typecheck bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,ml,tee,dp,torch,gwas,psi-fast]'
	# SimBench's load profiles (ODbL data, read from the package at run time; its dependency
	# pandapower would downgrade pandas and is not needed to read the profiles)
	$(BIN)/python -m pip install -q --no-deps simbench==1.6.3
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/veil demo risk

# Quick suite + e2e (real processes over gRPC/mTLS). `-m slow` tests are left to `make test-slow`.
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests - failing" >&2; fi; exit $$rc; }

test-quick: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/veil bench --help

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
