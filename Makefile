# gameday: `make drill` and `make test` are all a fresh machine needs.
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install lint fmt typecheck test unit integration drill bench bench-peers up down status lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install everything gameday needs (idempotent; quick when done)
	@bash infra/setup.sh

lint: install ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: install ## format the code and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint ## the whole suite: promtool on the SLO rules, unit, browser and integration tests
	$(BIN)/gameday slo test
	$(BIN)/pytest $(PYTEST_ARGS)

unit: install ## unit tests only
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

integration: install ## integration tests only (start and stop their own stack)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

up: install ## start the local stack
	$(BIN)/gameday up

down: ## stop the local stack
	$(BIN)/gameday down

status: ## show the local stack's health
	$(BIN)/gameday status

DRILL_TIME_SCALE ?= 10

drill: install ## start the stack and run the default game-day suite; report in out/drill
	$(BIN)/gameday up --time-scale $(DRILL_TIME_SCALE)
	$(BIN)/gameday drill --time-scale $(DRILL_TIME_SCALE) --out out/drill

bench-peers: install ## install nchan, Pushpin and Centrifugo (the fan-out benchmark's peers)
	@bash infra/setup-peers.sh

bench: install bench-peers ## benchmarks; writes docs/benchmarks.md
	$(BIN)/gameday bench cold-start --runs 5 --write docs/benchmarks.md
	$(BIN)/gameday bench latency --fans 10 1000 --write docs/benchmarks.md
	$(BIN)/gameday bench tracing --fans 300 --burst 2000 --write docs/benchmarks.md
	$(BIN)/gameday bench fanout --fans 1000 5000 10000 20000 --workers 4 --write docs/benchmarks.md
	$(BIN)/gameday bench memory --conns 5000 --write docs/benchmarks.md
	$(BIN)/gameday bench staleness --fans 200 --pollers 200 --write docs/benchmarks.md

lock: ## re-pin the whole dependency tree into infra/constraints.txt
	rm -rf /tmp/gameday-lock && python3 -m venv /tmp/gameday-lock
	/tmp/gameday-lock/bin/pip install -q -e '.[dev]'
	{ echo "# The whole dependency tree, pinned: pip install -c infra/constraints.txt -e '.[dev]'"; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  /tmp/gameday-lock/bin/pip freeze --exclude-editable; } > infra/constraints.txt

clean: down ## stop the stack and remove the virtualenv
	rm -rf $(VENV)
