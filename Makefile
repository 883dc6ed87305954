# etlml: every command a developer, CI and the README use.
#   make demo   install, start PostgreSQL + Airflow locally, run the pipeline, show predictions
#               (make demo-clean: drop the demo's databases and role, delete .demo)
#   make test   lint, type check and the whole test suite (what .ci/run calls)
#   make test-compose  the Compose layer: the stack under a Docker engine of its own (.ci/run calls it next)
#   make bench  the benchmark: pipeline steps at 1,000,000 events (EVENTS=...) against the COPY bound and
#               the naive approach, a sharded run, and Airflow's overhead under a real scheduler
#               (make bench GROWTH=30000000: instead, does a load slow down in a warehouse of 30M events?
#               make bench EVENTS=3000000 BENCH_ARGS=--only-real: only the real inputs, with each step's memory)
#   make bench-cli  how long each etlml command takes to answer (median of 5 runs each)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := $(shell sed -n 's/^uv==//p' requirements.lock)
STAMP := $(VENV)/.installed
EVENTS ?= 1000000

.PHONY: install system-deps compose-deps lock lint typecheck test test-compose demo demo-clean bench bench-cli clean

install: $(STAMP)

# The venv gets exactly what requirements.lock pins (bytecode compiled: Airflow imports 2-3x faster),
# then this package in editable mode without dependencies.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/uv || ($(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)")
	$(BIN)/uv pip sync --quiet --python $(BIN)/python --compile-bytecode requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps --editable .
	@# the build leaves src/etlml.egg-info, a second copy of the package's metadata on sys.path: Airflow
	@# would then load the etlml plugin (an entry point) twice and report the second as an import error
	rm -rf src/etlml.egg-info
	touch $@

# Debian's Chromium for the UI test (Playwright drives it; a test tool's own browser download is not used).
system-deps:
	@command -v chromium >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	} || { echo "make: the UI test needs Debian's chromium: sudo apt-get install chromium chromium-driver"; exit 1; }

# Debian's Docker engine, Compose 1.29 and debootstrap for the Compose layer (it builds every image it runs
# from Debian's packages and PyPI: no registry of images is needed).
compose-deps: system-deps
	@command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null || { \
	  [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io docker-compose debootstrap; \
	} || { echo "make: the Compose layer needs Debian's docker.io, docker-compose and debootstrap, as root: apt-get install docker.io docker-compose debootstrap"; exit 1; }

# Re-resolve the pins after editing requirements.in.
lock: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock

# lint-imports checks the layering contracts in pyproject.toml ([tool.importlinter]); check_links, that
# every relative link and #anchor of README.md and docs/*.md resolves.
lint: install
	$(BIN)/ruff check src dags tests bench scripts
	$(BIN)/ruff format --check src dags tests bench scripts
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m scripts.check_links

# dags/ is checked without arg-type: TaskFlow passes XComArg where a task declares the value it resolves to.
typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --disable-error-code=arg-type dags

# The end-to-end suites spend most of their time waiting on Airflow's scheduler, so they run beside the
# other layers; their report follows the others' (the full one is in test-output/e2e.log).
test: lint typecheck system-deps
	@mkdir -p test-output
	@$(BIN)/pytest -m e2e > test-output/e2e.log 2>&1 & e2e=$$!; \
	$(BIN)/pytest -m "not e2e and not compose"; others=$$?; \
	wait $$e2e; e2e_status=$$?; \
	echo "--- end-to-end suites (tests/e2e) ---"; grep -v '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T' test-output/e2e.log; \
	test $$others -eq 0 && test $$e2e_status -eq 0

# docker-compose.yml and docker-compose.workers.yml under a Docker engine the test starts and stops; images
# are cached in ETLML_DOCKER_CACHE (default /var/cache/etlml-compose). Figures: test-output/compose.json.
test-compose: install compose-deps
	$(BIN)/pytest -m compose

demo: install
	$(BIN)/python -m scripts.demo

# Start over: stop what is left of the demo, drop its databases and role, delete .demo.
demo-clean: install
	$(BIN)/python -m scripts.demo --clean

# Figures go to bench/out/ (JSON and chart); the last line printed is the RESULT line.
bench: install
	$(BIN)/python bench/bench.py --events $(EVENTS) $(if $(GROWTH),--growth $(GROWTH)) $(BENCH_ARGS)

# Every command of the tree, a fresh process each run, on a throwaway warehouse (bench/out/cli_latency.json).
bench-cli: install
	$(BIN)/python bench/cli_latency.py

clean:
	rm -rf $(VENV) .demo .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache bench/out
