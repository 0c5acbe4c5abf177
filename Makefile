# Two entry points (see README): `make demo` runs the main job, `make test` the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name auditlib --display-name "auditlib (venv)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# The main job: audit the bundled demo target with an embedded PostgreSQL. The demo is
# NOT READY on purpose, so the verdict does not fail make (--fail-on never).
demo: $(STAMP)
	$(BIN)/auditlib run examples/bookly --target-python $(BIN)/python --tests --live --fail-on never

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) output/*/
