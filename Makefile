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

bench: $(STAMP)
	$(PY) bench/bench.py

clean:
	rm -rf $(VENV) *.egg-info
