# Quick start: `make run` starts the product, `make test` runs the suite. Both set up what is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

# Two workers by default: the suite is mostly sockets and databases waiting, and machines have 2+ cores.
PYTEST_ARGS ?= -n 2

.PHONY: run test setup system-deps codec prompts bench clean kamailio-conf

run: setup prompts
	$(PY) run.py

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

setup: system-deps $(STAMP) codec node_modules/.installed var/certs/wss.pem

system-deps:
	@scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# switch.codec's optional C accelerator (switch/_esl_split.c, never committed built): without gcc or the
# Python headers one line says so and the pure-Python codec runs.
codec: $(STAMP)
	@scripts/build-codec.sh $(PY)

# Front-end libraries come from the npm registry through package.json and its lock file.
node_modules/.installed: $(wildcard package.json package-lock.json)
	@if [ -f package.json ]; then npm ci --no-audit --no-fund && touch $@; else mkdir -p node_modules && touch $@; fi

# The browser phone's development certificate: FreeSWITCH's secure WebSocket reads var/certs/wss.pem
# (freeswitch-conf/vars.xml hotline_certs_dir). Made once, never committed (var/); a real one put there stays.
var/certs/wss.pem:
	@scripts/dev-cert.sh var/certs

prompts: setup
	$(PY) -m ivr.prompts render

# Kamailio's configuration for the switches of HOTLINE_ESL (running), into var/kamailio/ (docs/kamailio.md).
kamailio-conf: setup
	$(PY) -m hotline.kamailio init-db
	$(PY) -m hotline.kamailio render

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var switch/_esl_split*.so
