# The two commands: `make run` (set up and run the service) and `make test` (set up and run the tests).
# Installs come from uv.lock (`uv sync --frozen`): the versions the tests ran with, every time.
# `make check` is the quick loop (lint, types, import contracts, unit tests); `make lock` updates
# uv.lock after a change to the dependencies in pyproject.toml.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# uv from PATH when there is one, else a copy installed from the package index into .uv/ (by pip,
# which any Python 3.11 has): the README's two commands need nothing but Python and make.
UV_BOOTSTRAP := .uv
UV ?= $(or $(shell command -v uv 2>/dev/null),$(UV_BOOTSTRAP)/bin/uv)
# The interpreter is the one found here (never a download), the environment is $(VENV). Named by
# its sys.executable, not by the path found: a pyenv shim (or any wrapper) is another path than
# the one the environment records, and uv then removed and rebuilt $(VENV) at every sync (seconds
# each time, the bytecode lost, and a test run using $(VENV) at that moment broken).
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null || echo $(PYTHON))
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC := $(UV) sync --frozen --quiet

.PHONY: run test check install install-dev migrate lint lint-fast unit lock clean bytecode

$(UV_BOOTSTRAP)/bin/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --target $(UV_BOOTSTRAP) 'uv>=0.9,<1'

# uv sync is a no-op (milliseconds) when the environment already matches the lock.
# --inexact: `make run` after `make test` keeps the dev tools installed.
install: | $(UV)
	@$(SYNC) --inexact

install-dev: | $(UV)
	@$(SYNC) --extra dev

migrate: install
	$(BIN)/pricing-service migrate

run: install
	$(BIN)/pricing-service migrate
	exec $(BIN)/pricing-service serve

lint: lint-fast
	$(BIN)/mypy

# The linters that take a second; mypy (20 s from an empty cache) is `lint`'s last step.
lint-fast: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Bytecode for every module a test process imports. The suite starts hundreds of Python processes
# (pytest workers, CLI commands, servers, refresh children); where PYTHONDONTWRITEBYTECODE is set,
# as on some machines, Python compiles every module it imports again in each of them (a third of
# the CPU of starting the service). compileall skips what is up to date: the dependencies once
# per lock (a stamp in $(VENV)), the project's own sources each time (a fraction of a second).
BYTECODE_STAMP := $(VENV)/.bytecode-compiled
$(BYTECODE_STAMP): uv.lock | install-dev
	@$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	@touch $@

bytecode: install-dev $(BYTECODE_STAMP)
	@$(BIN)/python -m compileall -q -j 0 pricing_service integrations migrations tests > /dev/null

unit: install-dev
	$(BIN)/python -m pytest tests/unit -q

# Seconds: everything that needs no database, no Redis and no server.
check: lint unit

# Everything: lint, then every test (integration ones too when the services are configured).
# The integration tier waits on servers, sockets and subprocesses more than it computes, so the
# suite runs on TEST_WORKERS pytest-xdist processes, each with a database and a Redis index of its
# own (tests/conftest.py: <database>_gwN, index + N), whole files to a worker so that a module's
# fixtures (a browser, a served database) are built once. Then the tests marked `serial` (real
# processes whose bounds a busy machine could stretch) run on SERIAL_WORKERS processes of their
# own, after the parallel tier: they wait on timeouts and stalled peers more than they compute
# (42 s of CPU in 89 s alone), so two of them at once and mypy beside them keep the machine
# below the parallel tier's load. `--dist loadgroup`: test_database_stall.py's four (37 s of
# waits) stay on one worker, the rest go wherever a worker is free. mypy's report is printed
# after theirs, and a type error fails `make test` as a failing test does. TEST_WORKERS=0: no
# xdist, and mypy first, as `make lint` runs it.
# The serial tier collects only the files that name `serial` as a word (every way of writing the
# mark does: `pytest.mark.serial`, `mark.serial`; a file that only mentions it is collected and
# skipped, never a marked test missed): collecting the whole suite to select 13 tests took 10-17 s
# of its wall time. With no such file it collects everything, as before.
TEST_WORKERS ?= 3
SERIAL_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
PYTEST_SERIAL := $(if $(filter 0,$(TEST_WORKERS)),,-n $(SERIAL_WORKERS) --dist loadgroup)
SERIAL_FILES = $(shell grep -rlw --include='test_*.py' serial tests | sort)
MYPY_REPORT := $(VENV)/.mypy-report
test: lint-fast bytecode
ifeq ($(TEST_WORKERS),0)
	$(BIN)/mypy
	$(BIN)/python -m pytest -m "not serial"
	$(BIN)/python -m pytest -m serial $(SERIAL_FILES)
else
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not serial"
	$(BIN)/mypy > $(MYPY_REPORT) 2>&1 & typing=$$!; \
	$(BIN)/python -m pytest $(PYTEST_SERIAL) -m serial $(SERIAL_FILES); tests=$$?; \
	wait $$typing; typed=$$?; echo "mypy:"; cat $(MYPY_REPORT); \
	test $$tests -eq 0 && test $$typed -eq 0
endif

# Minutes of upstream glitches, Redis and database faults and worker kills against two replicas,
# checking every price served (tests/integration/test_soak.py). Not part of `make test`: it needs
# the PRICING_TEST_* services as `make test` does, and PRICING_SOAK_SECONDS (default 300).
PRICING_SOAK_SECONDS ?= 300
.PHONY: soak
soak: install-dev
	PRICING_SOAK_SECONDS=$(PRICING_SOAK_SECONDS) $(BIN)/python -m pytest tests/integration/test_soak.py -s -q -p no:cacheprovider

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(UV_BOOTSTRAP) var .pytest_cache .mypy_cache .ruff_cache

# A benchmark, not a test (`make test` never runs it): the selector route vs nginx on the same
# bytes, refresh time, RSS per worker, growth to 50,000 models. Results: docs/BENCHMARKS.md.
# BASE: a revision whose own service is measured first in the same run, beside this tree's, in
# one table (a worktree with its own .venv under var/bench/); `make bench BASE=` skips it. The
# default is the commit before the refresh moved into a child process.
BASE ?= 00e9700
.PHONY: bench
bench: install-dev
	@command -v nginx >/dev/null && command -v wrk >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq nginx wrk; }
	BENCH_BASE=$(BASE) $(BIN)/python -m bench.run
