# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates .venv and installs handwrite into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAMPLES := data/samples

.PHONY: demo test clean

$(BIN)/handwrite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Transcribe the sample lines with the shipped default model, then score them against their references.
demo: $(BIN)/handwrite
	$(BIN)/handwrite transcribe $(SAMPLES)/lines
	$(BIN)/handwrite eval $(SAMPLES)

# Lint and format check first (ruff, settings in pyproject.toml): seconds, and a failure says where.
test: $(BIN)/handwrite
	$(BIN)/ruff check handwrite tests scripts
	$(BIN)/ruff format --check handwrite tests scripts
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
