# Every target creates the virtualenv first (the one Pulumi.yaml names, so `pulumi preview`
# and `pulumi up` use the same packages) and reinstalls when a requirements file changes.
# PYTHON is the interpreter it is created with; given explicitly (`PYTHON=python3.13 make
# test`), it is also the one .venv must run: a .venv of another Python version is recreated.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STACK ?= dev
# make dev listens on PORT (REST API), PORT+1 (WebSocket API) and PORT+2 (moto).
PORT ?= 8080
# make demo approves the ticket itself; APPROVE=manual waits for `make approve` instead.
APPROVE ?= auto
PY_VERSION := import sys; print("%d.%d" % sys.version_info[:2])

ifneq ($(origin PYTHON),file)
WANT_PYTHON := $(shell $(PYTHON) -c '$(PY_VERSION)' 2>/dev/null)
ifeq ($(WANT_PYTHON),)
# Which of the usual names do run here (a pyenv shim of a version pyenv has not installed is on
# PATH but does not run), so the message suggests only those.
RUNNING_PYTHONS := $(strip $(foreach p,python3.14 python3.13 python3.12 python3.11 python3,\
  $(if $(shell $(p) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo y),$(p))))
$(error PYTHON=$(PYTHON) does not run here (not on PATH, or a pyenv shim of a version pyenv has not\
  installed: see `pyenv versions`); $(if $(RUNNING_PYTHONS),Python 3.11+ here: $(RUNNING_PYTHONS),\
  no Python 3.11+ runs here: install one))
endif
HAVE_PYTHON := $(shell test -x $(BIN)/python && $(BIN)/python -c '$(PY_VERSION)' 2>/dev/null)
ifneq ($(HAVE_PYTHON),$(WANT_PYTHON))
OTHER_PYTHON := other-python
endif
endif

.PHONY: venv dev drill demo approve test lint workflows format preview policy openapi cost bench config-reference clean other-python

# pip shows its progress bars on a terminal; in CI (no terminal) it logs one line per package.
$(STAMP): requirements.txt requirements-dev.txt constraints.txt $(OTHER_PYTHON)
	@if [ -n "$(OTHER_PYTHON)" ] && [ -e $(VENV) ]; then \
	  echo "make: $(VENV) runs Python $(or $(HAVE_PYTHON),?) but PYTHON=$(PYTHON) is $(WANT_PYTHON): recreating $(VENV)"; \
	  rm -rf $(VENV); \
	fi
	@test -x $(BIN)/python || { \
	  $(PYTHON) -c 'import sys; sys.exit("make: $(PYTHON) is Python %d.%d; agent-infra needs 3.11 or later (PYTHON=python3.13 make ...)" % sys.version_info[:2] if sys.version_info < (3, 11) else 0)' && \
	  echo "make: creating $(VENV) with $(PYTHON) (Python $$($(PYTHON) -c '$(PY_VERSION)'))" && \
	  $(PYTHON) -m venv $(VENV); \
	}
	@echo "make: installing the pinned requirements into $(VENV): pulumi, pulumi-aws, moto, boto3 and"
	@echo "      their dependencies, about 130 packages and 950 MB. With a cold pip cache this downloads"
	@echo "      them all and takes several minutes; it runs again only when a requirements file changes."
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar $$(test -t 1 && echo on || echo off) \
	  -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

other-python:

venv: $(STAMP)

# The independent validators the tests run (asl-validator), from the npm registry.
VALIDATORS := validators/node_modules/.installed
$(VALIDATORS): validators/package.json validators/package-lock.json
	@echo "make: installing the validators the tests run (asl-validator) from the npm registry"
	cd validators && npm ci --no-audit --no-fund --loglevel=error
	touch $(VALIDATORS)

## dev: the whole stack on this machine (moto, the real handlers and state machines, the APIs on localhost; PORT=8080,
## STACK=dev: the stack file Pulumi.<STACK>.yaml, its throttling included);
## REGIONS=us-east-1,eu-west-1 runs several regions behind a global endpoint (REPLICATION_LAG_MS=1000 by default)
dev: $(STAMP)
	@$(BIN)/python -m local.stack --port $(PORT) --stack $(STACK) $(if $(REGIONS),--regions $(REGIONS)) \
	  $(if $(REPLICATION_LAG_MS),--replication-lag-ms $(REPLICATION_LAG_MS))

## drill: two local regions, 20 clients, the first region killed and brought back, then one session through both at
## once; prints lost/duplicated/run twice/rekeyed and the time to recover, writes build/drill/report.json and
## timeline.png, exits non-zero when a goal is missed (SHORT=1: the CI version)
drill: $(STAMP)
	@$(BIN)/python -m local.drill $(if $(SHORT),--short)

## demo: a scripted conversation against the running `make dev` (in another terminal; APPROVE=manual to approve yourself)
demo: $(STAMP)
	@$(BIN)/python -m local.demo --approve $(APPROVE)

## approve: grant the approval the demo waits for (APPROVAL=<id>)
approve: $(STAMP)
	@$(BIN)/python -m local.demo approve $(APPROVAL)

## test: lint, format check, the workflows' audit and schema, and every test (what CI runs)
test: $(STAMP) $(VALIDATORS) workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n auto --dist loadfile

WORKFLOWS := $(wildcard .github/workflows/*.yml)

## workflows: zizmor (offline audits only, the auditor persona: every finding, false positives
## included) and the GitHub workflow schema vendored in check-jsonschema
workflows: $(STAMP)
	$(BIN)/zizmor --offline --persona auditor --quiet .github/workflows
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows $(WORKFLOWS)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## preview: the real program for STACK (default dev) offline, under Pulumi mocks
preview: $(STAMP)
	$(BIN)/python -m local.preview $(STACK)

## policy: the policy pack against the real program for STACK, offline, under Pulumi mocks
policy: $(STAMP)
	$(BIN)/python -m local.policy_check $(STACK)

## openapi: write each region's REST API of STACK as OpenAPI JSON into build/openapi/
openapi: $(STAMP)
	$(BIN)/python -m local.preview $(STACK) --openapi build/openapi > /dev/null

## cost: what STACK costs: fixed a month (the program's resources), per 1M turns (measured on the local
## stack), model tokens; RATE=<turns/s> adds the capacity that rate needs beside AWS's default quotas;
## MARKDOWN=<file> also writes a short summary there (the pull request's preview comment)
cost: $(STAMP)
	$(BIN)/python -m cost $(STACK) $(if $(RATE),--rate $(RATE)) $(if $(MARKDOWN),--markdown $(MARKDOWN))

## bench: state-layer round trips, program time by region count, cold starts, chunking and JWT verification, local turns, DAX figures and start-up
bench: $(STAMP)
	$(BIN)/python -m bench.state_roundtrips
	$(BIN)/python -m bench.program_regions
	$(BIN)/python -m bench.cold_start
	$(BIN)/python -m bench.api_edge
	$(BIN)/python -m bench.local_turns
	$(BIN)/python -m bench.dax
	$(BIN)/python -m bench.startup

## config-reference: rewrite docs/configuration.md's stack config table from the pydantic models
config-reference: $(STAMP)
	$(BIN)/python -m components.config --write-readme docs/configuration.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
