# Two entry points for a fresh clone: `make demo` and `make test`.
# Each creates .venv and installs handwrite into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL := models/hooker-small/model.pt
SAMPLES := data/samples

.PHONY: demo test clean

$(BIN)/handwrite: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Transcribe the sample lines with the shipped model, then score them against their references.
demo: $(BIN)/handwrite
	$(BIN)/handwrite transcribe $(MODEL) $(SAMPLES)/lines
	$(BIN)/handwrite eval $(MODEL) $(SAMPLES)

test: $(BIN)/handwrite
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
