# Two entry points (see README): `make demo` runs the main job, `make test` the suite.
PYTHON ?= python3
# The browser the report's tests drive (tests/test_report_browser.py): Debian's chromium.
CHROMIUM ?= /usr/bin/chromium
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

# Installed when missing and we are root (as on CI); otherwise make says how, and fails:
# the browser tests fail rather than skip without a browser.
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make test: $(CHROMIUM) is missing: install Debian's chromium package (apt-get install chromium)" >&2; \
		exit 1; \
	fi

test: $(STAMP) $(CHROMIUM)
	AUDITLIB_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) output/*/
