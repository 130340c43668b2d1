# The two commands: `make local` (the whole stack on this machine) and `make test`.
# Both create the virtualenv from the pinned requirements first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
KCLPY_VERSION := $(shell sed -n 's/^amazon-kclpy==//p' requirements-lock.txt)
MAVEN_REPO ?= $(HOME)/.m2/repository
KCL_JARS := tools/kcl/jars/kclpy-pom.xml
CHROMIUM := /usr/bin/chromium
STAGE ?= dev
STACK ?= clickstream
READ_AUTH ?= cognito

# make local CONSUMERS=kcl: the consumers under the KCL's MultiLangDaemon instead of Lambda's
# event-source runner.
CONSUMERS ?= lambda

.PHONY: venv kcl-jars soak-kcl dynalite sdks graphiql soak-aggregates local test unit integration lint chromium package simulate reconcile sql bench soak deploy destroy rehearse lock clean

# amazon-kclpy's install copies the daemon's jars into the package, fetching each from a
# Maven repository: pointed at the local one that `mvn` filled (kcl-jars), it downloads nothing.
$(INSTALLED): requirements-lock.txt pyproject.toml $(KCL_JARS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	KCL_MVN_REPO_SEARCH_URL=file://$(MAVEN_REPO)/ $(PY) -m pip install --quiet -r requirements-lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(INSTALLED)

# The KCL MultiLangDaemon's jars (Maven Central, by mvn): exactly those amazon-kclpy's own
# pom.xml lists, for the pinned amazon-kclpy, into tools/kcl/jars (git-ignored).
$(KCL_JARS): requirements-lock.txt tools/kcl/install-jars.sh
	tools/kcl/install-jars.sh $(KCLPY_VERSION) $(MAVEN_REPO)

kcl-jars: $(KCL_JARS)

# dynalite (npm, pinned by tools/dynalite/package-lock.json): the second DynamoDB engine the
# aggregate store's tests run on.
DYNALITE := tools/dynalite/node_modules/.package-lock.json
$(DYNALITE): tools/dynalite/package.json tools/dynalite/package-lock.json
	npm ci --prefix tools/dynalite --no-audit --no-fund --loglevel=error
	touch $@

dynalite: $(DYNALITE)

# The browser SDKs the tests drive unmodified (posthog-js, Snowplow's and Segment's), lz-string
# and terser: npm packages as files, pinned by tools/sdks/package-lock.json.
SDKS := tools/sdks/node_modules/.package-lock.json
$(SDKS): tools/sdks/package.json tools/sdks/package-lock.json
	npm ci --prefix tools/sdks --no-audit --no-fund --loglevel=error
	touch $@

sdks: $(SDKS)

# GraphiQL and React (UMD builds), which `make local` serves at /graphiql/; pinned by
# tools/graphiql/package-lock.json.
GRAPHIQL := tools/graphiql/node_modules/.package-lock.json
$(GRAPHIQL): tools/graphiql/package.json tools/graphiql/package-lock.json
	npm ci --prefix tools/graphiql --no-audit --no-fund --loglevel=error
	touch $@

graphiql: $(GRAPHIQL)

# Debian's chromium for the dashboard's browser tests (Playwright drives it; no browser download).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@test -x $(CHROMIUM)

local: venv graphiql
	CLICKSTREAM_CONSUMERS=$(CONSUMERS) $(PY) -m localdev

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy $(wildcard clickstream consumers localdev simulator bench infra) api/app.py

unit: venv dynalite sdks
	$(PY) -m pytest -q tests/unit

# Known vulnerabilities in the pinned dependencies fail the build (PyPI's advisory data; a
# package the service cannot look up is listed as skipped). AUDIT_FLAGS=--strict also fails
# when any package could not be audited.
audit: venv
	$(VENV)/bin/pip-audit -r requirements-lock.txt --no-deps --disable-pip --progress-spinner off $(AUDIT_FLAGS)

# tests/kcl starts its own stack (consumers under the KCL), so it runs in a pytest of its own.
# The fast tier (tests/unit: CPU, no stack) runs beside the packaging and security tiers
# (HTTP answers, no clocks); the tiers whose checks depend on timing (browser, infra,
# integration) run first, alone. Two pytest processes on two cores at the end; each prints
# its summary; any failing fails the target.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider --timeout=600
test: venv dynalite sdks graphiql chromium lint audit
	@mkdir -p test-output
	@$(PYTEST) tests/browser tests/infra tests/integration; timed=$$?; \
	$(PYTEST) -m "not soak" tests/kcl; kcl=$$?; \
	$(PYTEST) tests/unit > test-output/unit.log 2>&1 & unit=$$!; \
	$(PYTEST) tests/packaging tests/security; answers=$$?; \
	wait $$unit; fast=$$?; echo "--- tests/unit (beside packaging and security) ---"; \
	cat test-output/unit.log; exit $$(( timed || kcl || answers || fast ))

# The deployment zip and a SAM template (functions, API and the event source mappings, whose
# settings come from infra/template.yaml) in out/chalice/.
package: venv
	$(PY) -m infra.package_overlay out/chalice-overlay.json
	cd api && AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} ../$(VENV)/bin/chalice package --stage $(STAGE) --merge-template ../out/chalice-overlay.json ../out/chalice

LEDGER ?= out/ledger.json

# make simulate ARGS="--duration 60", then make reconcile ARGS="--wait 120"
simulate: venv
	@mkdir -p $(dir $(LEDGER))
	$(PY) -m simulator --ledger $(LEDGER) $(ARGS)

reconcile: venv
	$(PY) -m simulator reconcile --ledger $(LEDGER) $(ARGS)

# SQL over the archive with DuckDB: make sql Q="SELECT count(*) FROM events" [ARGS="--format csv"],
# or ARGS="--sample funnel_by_day". Without BUCKET it reads the local stack's emulator (make
# local); with BUCKET, that bucket on AWS with the SDK's credentials. Q is read from the
# environment, so its quotes stay as typed; the command is not echoed, so the output is the rows.
sql: venv
	@test -n "$$Q$(ARGS)" || (echo 'usage: make sql Q="SELECT ..." [BUCKET=<archive bucket>] [ARGS="--format csv|json"]'; exit 2)
	@$(PY) -m clickstream.sql $(if $(BUCKET),--bucket $(BUCKET),--local) $(ARGS) $${Q:+-- "$$Q"}

# Speed, cost and freshness figures against baselines measured in the same run -> bench/results.md
bench: venv
	$(PY) -m bench $(ARGS)

# At least 200,000 simulated events through the local stack with faults injected, reconciled.
soak: venv
	$(PY) -m localdev.soak $(ARGS)
	$(MAKE) soak-kcl
	CLICKSTREAM_SCHEMATHESIS_EXAMPLES=50 $(PY) -m pytest -q -p no:cacheprovider --timeout=1800 tests/security/test_schemathesis.py

# The KCL consumers under failure: a worker SIGKILLed between write and checkpoint, a second
# worker taking leases and handing them back, a shard split during traffic (tests/kcl).
soak-kcl: venv
	$(PY) -m pytest -q -p no:cacheprovider --timeout=3600 tests/kcl/test_kcl_soak.py

# The aggregates' end-to-end test at real-shop cardinality: 100,000 pages, 10,000 custom types
# (with retries, a skewed clock, four shards, a split and a merge), counted against its ledger.
soak-aggregates: venv
	CLICKSTREAM_E2E_PAGES=100000 CLICKSTREAM_E2E_TYPES=10000 $(PY) -m pytest -q -p no:cacheprovider --timeout=3600 tests/integration/test_aggregates_e2e.py

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements-lock.txt

clean:
	rm -rf $(VENV) .local out test-output .pytest_cache .mypy_cache .ruff_cache

# AWS: BUCKET must be a globally unique bucket name; STAGE defaults to dev.
deploy: venv
	@test -n "$(BUCKET)" || (echo "usage: make deploy BUCKET=<unique-archive-bucket> [STAGE=dev] [ALARM_EMAIL=you@example.com] [DASHBOARD_BUCKET=<unique-site-bucket>] [PYARROW_LAYER=<layer ARN>] [READ_AUTH=cognito|apikey] [TRUSTED_PROXIES=<CIDRs>] [GRAPHQL_INTROSPECTION=true] [KCL_IMAGE=<image> KCL_SUBNETS=<ids> KCL_SECURITY_GROUPS=<ids>]"; exit 2)
	$(PY) -m infra.deploy up --stage $(STAGE) --stack $(STACK) --bucket $(BUCKET) --alarm-email "$(ALARM_EMAIL)" --dashboard-bucket "$(DASHBOARD_BUCKET)" --pyarrow-layer "$(PYARROW_LAYER)" --read-auth $(READ_AUTH) --trusted-proxies "$(TRUSTED_PROXIES)" --graphql-introspection $(or $(GRAPHQL_INTROSPECTION),false) --kcl-image "$(KCL_IMAGE)" --kcl-subnets "$(KCL_SUBNETS)" --kcl-security-groups "$(KCL_SECURITY_GROUPS)"

destroy: venv
	$(PY) -m infra.deploy down --stage $(STAGE) --stack $(STACK)

# No AWS account needed: make deploy + make destroy against the embedded emulator (https on
# loopback), the deployment inspected and the deployed package run; a table of checks.
rehearse: venv
	$(PY) -m infra.rehearse $(ARGS)
