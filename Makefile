# The two commands the README opens with: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-load bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ocproxy serve

test: $(STAMP)
	$(PY) -m pytest -m "not load" $(PYTEST_ARGS)

test-load: $(STAMP)
	$(PY) -m pytest -m load $(PYTEST_ARGS)

# The benchmark wants nginx (static fake upstream) and wrk (load generator);
# as root with apt it installs them, else bench.py falls back to Python ones.
bench: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	   ! { command -v wrk >/dev/null 2>&1 && { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }; }; then \
	  echo "make bench: installing nginx and wrk"; \
	  { apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null; } || \
	  apt-get install -y -qq nginx wrk >/dev/null || echo "make bench: install failed, using the Python fallbacks"; \
	fi
	$(PY) bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
