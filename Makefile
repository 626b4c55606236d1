# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench chaos bench-store clean python-version test-compose report

run: python-version
	$(PYTHON) -m stack

python-version:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "Python 3.11 or newer is needed as $(PYTHON) (try: make $(MAKECMDGOALS) PYTHON=python3.12)"; exit 1; }

# Creates .venv on first use (and again if it breaks), installs the pinned tools, then runs
# the tests, flake8 and mypy.
test: $(VENV)/.installed
	$(BIN)/pytest
	$(BIN)/flake8
	$(BIN)/mypy

lint: $(VENV)/.installed
	$(BIN)/flake8
	$(BIN)/mypy

# Side-by-side benchmarks (minutes; not part of `make test`). Writes bench/results/ and
# docs/bench/. Uses wrk when installed (apt-get install wrk), else a Python client.
bench:
	$(PYTHON) bench/chain.py

# Faults one after another under load, the launcher restarting each victim (~2.5 minutes,
# loopback ports 9200-9223; CHAOS_ARGS=--quick for a ~1 minute smoke run). Writes
# bench/results/chaos.json and chaos.md.
chaos: python-version
	$(PYTHON) bench/chaos.py $(CHAOS_ARGS)

# The stack in Docker with compose.yml (a few minutes; .ci/run runs it after `make test`).
# As root on a machine with no Docker engine it installs Debian's docker.io and
# docker-compose, starts dockerd itself, and puts the host's network back as it was.
test-compose:
	bash scripts/compose_test.sh

bench-store:
	$(PYTHON) bench/store_bench.py

# docs/REPORT.md as docs/REPORT.pdf, printed by headless Chromium (apt-get install chromium).
report: python-version
	$(PYTHON) scripts/report.py

$(VENV)/.installed: requirements-dev.txt | python-version
	@$(BIN)/python -c "" 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache
