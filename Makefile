# The two commands the README opens with: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-load bench clean claude-code claude-code-router redis-server chromium

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ocproxy serve

# The real Claude Code CLI for tests/test_claude_code.py, installed from npm
# into .cache/claude-code. `make test` installs it when npm exists; a failed
# install does not stop make: the test then skips saying why (fails in CI).
CLAUDE_CODE := .cache/claude-code/node_modules/.bin/claude
HAVE_NPM := $(shell command -v npm 2>/dev/null)

claude-code:
	@if [ ! -x $(CLAUDE_CODE) ]; then \
	  mkdir -p .cache/claude-code && \
	  npm install --prefix .cache/claude-code --no-audit --no-fund --loglevel=error @anthropic-ai/claude-code || \
	  echo "make claude-code: npm install failed; tests/test_claude_code.py will report it"; \
	fi

# The real redis-server for the Redis state backend's tests (tests/redis_server.py
# starts its own on a free port), from Debian's packages when root with apt. A
# failed install does not stop make: those tests then skip saying why (fail in CI).
redis-server:
	@if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make redis-server: installing Debian's redis-server"; \
	    { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null; } || \
	    echo "make redis-server: install failed; the Redis tests will report it"; \
	  else \
	    echo "make redis-server: redis-server missing and not root with apt; the Redis tests will report it"; \
	  fi; \
	fi

# Headless Chromium for tests/test_dashboard.py, from Debian's packages when
# run as root with apt; otherwise that test skips saying why (fails in CI).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "make chromium: installing Debian's chromium"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "make chromium: install failed; tests/test_dashboard.py will report it"; \
	fi

test: $(STAMP) redis-server $(if $(HAVE_NPM),claude-code) chromium
	$(PY) -m pytest -m "not load" $(PYTEST_ARGS)

test-load: $(STAMP)
	$(PY) -m pytest -m load $(PYTEST_ARGS)

# claude-code-router 2.x for `make bench`'s optional `ccr` target (issue 19's
# comparison), installed from npm into .cache/claude-code-router; a failed
# install does not stop make: bench.py then leaves ccr out.
CCR := .cache/claude-code-router/node_modules/@musistudio/claude-code-router/dist/cli.js

claude-code-router:
	@if [ ! -f $(CCR) ]; then \
	  mkdir -p .cache/claude-code-router && \
	  npm install --prefix .cache/claude-code-router --no-audit --no-fund --loglevel=error @musistudio/claude-code-router@2 || \
	  echo "make claude-code-router: npm install failed; make bench runs without the ccr target"; \
	fi

# The benchmark wants nginx (static fake upstream) and wrk (load generator);
# as root with apt it installs them, else bench.py falls back to Python ones.
bench: $(STAMP) $(if $(HAVE_NPM),claude-code-router)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	   ! { command -v wrk >/dev/null 2>&1 && { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }; }; then \
	  echo "make bench: installing nginx and wrk"; \
	  { apt-get update -qq && apt-get install -y -qq nginx-light wrk >/dev/null; } || \
	  apt-get install -y -qq nginx wrk >/dev/null || echo "make bench: install failed, using the Python fallbacks"; \
	fi
	$(PY) bench/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
