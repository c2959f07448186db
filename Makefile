# Developer entry points. `make run` serves a broker, `make test` runs the test suite; both
# create .venv and install the project into it on first use (again only when pyproject.toml
# changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
TYPECHECK_DIR := build/typecheck

.PHONY: browser-deps install run test proto proto-check lint typecheck-tree node-deps demo bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,blog]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/leasq serve --dashboard

# Two pytest workers (pytest-xdist), each with a Redis and brokers of its own: about 9 minutes
# on 2 cores. `make test PYTEST_ARGS=` runs the suite in one process. Then the broker's storage,
# leasing, flow-control, aggregation, schedule, operator, worker-process and security tests run
# again on a 6-node Redis Cluster that the session builds (about 4 minutes more); tests/cluster
# runs on one always.
PYTEST_ARGS ?= -n 2
CLUSTER_TESTS := tests/broker tests/flow tests/groups tests/schedules tests/operations \
	tests/workers tests/security
test: install node-deps browser-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) --redis-kind cluster $(CLUSTER_TESTS)

# The blog example (examples/blog): broker, SMTP sink, both workers and the HTTP app, with what
# to curl; Ctrl-C stops them all. Data and logs in ./.blog.
demo: install
	$(BIN)/python -m examples.blog.demo

# examples/node (the Node.js interop tests run it): npm ci, again only when its lock changes.
# Without npm there is nothing to install; the tests then skip with the reason (fail in CI).
NODE_DIR := examples/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed-lock

$(NODE_STAMP): $(NODE_DIR)/package-lock.json $(NODE_DIR)/package.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

node-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s --no-print-directory $(NODE_STAMP); \
	else echo "node-deps: npm not found, examples/node not installed"; fi

# The dashboard's browser tests drive Debian's Chromium: install it when missing (as root
# through apt-get; anyone else is told what to run, and those tests then fail saying so).
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser-deps: installing Debian's chromium"; \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)); \
	else echo "browser-deps: run 'apt-get install -y chromium' for the dashboard's browser tests"; fi

proto: install
	PATH="$(abspath $(BIN)):$$PATH" PYTHON=$(abspath $(BIN)/python) scripts/gen_proto.sh

# Regenerate, then fail on any difference from the committed code, new files included.
proto-check: proto
	git diff --exit-code -- proto
	@untracked="$$(git ls-files --others --exclude-standard -- proto)"; \
	if [ -n "$$untracked" ]; then echo "untracked generated files:"; echo "$$untracked"; exit 1; fi

# mypy cannot follow the editable install's package-dir mapping (proto/leasq -> leasq,
# broker_service -> leasq_broker, ...): give it a tree of links with the import names.
typecheck-tree:
	@mkdir -p $(TYPECHECK_DIR)
	@ln -sfn ../../proto/leasq $(TYPECHECK_DIR)/leasq
	@ln -sfn ../../broker_service $(TYPECHECK_DIR)/leasq_broker
	@ln -sfn ../../sdk $(TYPECHECK_DIR)/leasq_sdk
	@ln -sfn ../../worker_runtime $(TYPECHECK_DIR)/leasq_worker

lint: install typecheck-tree
	$(BIN)/buf lint
	$(BIN)/ruff check .
	MYPYPATH=$(TYPECHECK_DIR) $(BIN)/mypy -p leasq_broker -p leasq_sdk -p leasq_worker

# Benchmarks against Celery, RQ, Dramatiq, arq, taskiq and Huey, then Leasq's scale curves;
# writes docs/benchmarks.md and docs/img/*.png (~20 minutes; bench-quick: ~2 minutes).
# Never part of `make test`. arq's newest releases pin redis < 6, which the other peers'
# current releases do not accept: arq runs from a virtualenv of its own.
BENCH_STAMP := $(VENV)/.installed-bench
ARQ_VENV := .venv-bench-arq

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

$(ARQ_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(ARQ_VENV)
	$(ARQ_VENV)/bin/python -m pip install --quiet --upgrade arq
	touch $@

bench: $(BENCH_STAMP) $(ARQ_VENV)/.installed
	cd benchmarks && ../$(BIN)/python compare.py $(BENCH_ARGS)
	cd benchmarks && ../$(BIN)/python scale.py $(BENCH_ARGS)
	cd benchmarks && ../$(BIN)/python enqueue_bench.py $(BENCH_ARGS)
	cd benchmarks && ../$(BIN)/python many_queues_bench.py $(BENCH_ARGS)
	cd benchmarks && ../$(BIN)/python processes_bench.py $(BENCH_ARGS)
	cd benchmarks && ../$(BIN)/python report.py $(BENCH_ARGS)

bench-quick:
	$(MAKE) --no-print-directory bench BENCH_ARGS=--quick
