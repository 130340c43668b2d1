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

# make local CONSUMERS=kcl: the stream's consumers under the KCL's MultiLangDaemon instead of
# Lambda's event-source runner.
CONSUMERS ?= lambda

.PHONY: readme venv kcl-jars soak-kcl dynalite sdks graphiql tracker soak-aggregates local test unit integration lint chromium package simulate reconcile sql compact bench soak deploy destroy rehearse lock clean coverage mutants

# amazon-kclpy's install copies the daemon's jars into the package, fetching each from a
# Maven repository: pointed at the local one that `mvn` filled (kcl-jars), it downloads nothing.
$(INSTALLED): requirements-lock.txt pyproject.toml $(KCL_JARS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==26.2.1  # pinned: chalice 1.34 requires pip < 26.3
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

# The tracker minified for hosting (terser, from tools/sdks): out/cs.min.js.
tracker: sdks
	@mkdir -p out
	tools/sdks/node_modules/.bin/terser tracker/cs.js --compress --mangle --output out/cs.min.js
	@echo "out/cs.min.js: $$(wc -c < out/cs.min.js) bytes, $$(gzip -9c out/cs.min.js | wc -c) gzipped"

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
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy $(wildcard clickstream consumers localdev simulator bench infra) api/app.py

unit: venv dynalite sdks
	$(PY) -m pytest -q tests/unit

# Line coverage of the deployed code (clickstream/, consumers/, api/) by the fast tier (the
# unit tests and the stackless security tests), per module; HTML in test-output/coverage/.
coverage: venv dynalite sdks
	$(PY) -m pytest -q -p no:cacheprovider tests/unit tests/security/test_units.py \
	  --cov=clickstream --cov=consumers --cov=api --cov-report=term \
	  --cov-report=html:test-output/coverage

# Mutation testing, not part of `make test`: mutmut mutates the modules that carry the
# guarantees and runs the fast tier's tests that reach each mutant (the selection is
# [tool.mutmut] in pyproject.toml); the table per module goes to tests/mutation.md. Then the
# mutants issue 19 names, applied by hand (tests/named_mutants.py), must all be killed.
# mutmut runs every mutant not run yet (and those of a function changed since), cheapest
# first: the small modules take minutes on two cores, clickstream.store hours; stopped, it
# goes on from where it was, on another machine too (its results are kept in
# tests/mutation-results.json, by tests/mutation_results.py). RERUN names mutants, or
# patterns, to run again whatever their result (survivors after new tests:
# RERUN='clickstream.store.x_value_key__mutmut_3'); MUTATE picks the modules of the table.
MUTATE ?= clickstream.records consumers.common clickstream.compaction clickstream.auth \
  clickstream.keys clickstream.ingest clickstream.queries clickstream.aggregates clickstream.store
RERUN ?=
mutants: venv dynalite sdks
	$(PY) -m tests.mutation_results restore
	set -f; AGGREGATE_STORE_ENGINES=moto nice -n 10 $(PY) -m tests.dynalite -- $(VENV)/bin/mutmut run $(RERUN); \
	  status=$$?; $(PY) -m tests.mutation_results save; exit $$status
	$(PY) -m tests.mutation_report $(MUTATE)
	nice -n 10 $(PY) -m tests.named_mutants

# Known vulnerabilities in the pinned dependencies fail the build (PyPI's advisory data; a
# package the service cannot look up is listed as skipped). AUDIT_FLAGS=--strict also fails
# when any package could not be audited.
audit: venv
	$(VENV)/bin/pip-audit -r requirements-lock.txt --no-deps --disable-pip --progress-spinner off $(AUDIT_FLAGS)

# Two cores, three pytest processes. The CPU tiers (unit, packaging, security: no deadlines)
# run niced in the background from the start and take whatever CPU the others leave idle. In
# front of them, the browser tier (the dashboard's refresh clock, the tracker's timers) and
# then the stack tiers (infra, integration, kcl: they poll with deadlines) run one after the
# other (run at once, they took 60 % longer each and starved the CPU tiers: the tiers' CPU
# time, 1,180 s, is what bounds the target on two cores). The deploy rehearsal (one serial
# deploy and destroy against its own emulator, about 110 s) runs niced beside the browser
# tier, whose timers leave a core mostly idle, not in front of the stacks. Each prints its summary; any
# failing fails the target. tests/kcl comes last among the stack tiers: its stack (consumers
# under the KCL) starts when the module before it does, so only the reconcile itself is
# added; its failure runs are `make soak-kcl`.
# Each tier has a time limit, about twice its usual time. A tier stopped there prints every
# thread's stack (tests/hang_report.py), then stops as after Ctrl-C: its failures so far are
# reported and its fixtures stop the local stacks; the target fails. `timeout` runs each tier
# in a process group of its own, so a stop of the target (Ctrl-C, CI's TERM) is passed on to
# the tiers by the trap, which waits for them and then stops the shell by the same signal.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider --timeout=600 --durations=20
TIME_LIMIT = timeout --kill-after=90
test: venv dynalite sdks graphiql chromium lint audit
	@mkdir -p test-output
	@stop() { kill -$$1 $$fast_pid $$rehearsal_pid $$tier_pid 2>/dev/null; wait; trap - $$1; kill -$$1 $$$$; }; \
	trap 'stop INT' INT; trap 'stop TERM' TERM; trap 'stop HUP' HUP; \
	nice -n 10 $(TIME_LIMIT) 1500 $(PYTEST) tests/unit tests/packaging tests/security > test-output/fast.log 2>&1 & fast_pid=$$!; \
	nice -n 5 $(TIME_LIMIT) 600 $(PYTEST) tests/infra/test_rehearsal.py > test-output/rehearsal.log 2>&1 & rehearsal_pid=$$!; \
	$(TIME_LIMIT) 900 $(PYTEST) tests/browser & tier_pid=$$!; wait $$tier_pid; browser=$$?; \
	$(TIME_LIMIT) 1200 $(PYTEST) -m "not soak" tests/infra tests/integration tests/kcl --ignore=tests/infra/test_rehearsal.py & tier_pid=$$!; wait $$tier_pid; stacks=$$?; \
	wait $$rehearsal_pid; rehearsal=$$?; wait $$fast_pid; fast=$$?; trap - INT TERM HUP; \
	echo "--- tests/infra/test_rehearsal.py (niced, beside the browser tier) ---"; \
	cat test-output/rehearsal.log; \
	echo "--- tests/unit, packaging, security (niced, beside the others) ---"; \
	cat test-output/fast.log; \
	for result in browser:$$browser stacks:$$stacks rehearsal:$$rehearsal fast:$$fast; do \
	  case $$result in *:124|*:137) echo "make test: the $${result%:*} tier ran out of time (its stacks are above)";; esac; \
	done; exit $$(( browser || stacks || rehearsal || fast ))

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

# Compaction on the running `make local` stack, now, as its hourly schedule runs it (every
# closed hour touched since its last compaction); HOURS=24 compacts the last 24 hours instead.
compact: venv
	$(PY) -m localdev.compact $(if $(HOURS),--hours $(HOURS))

# SQL over the archive with DuckDB: make sql Q="SELECT count(*) FROM events" [ARGS="--format csv"],
# or ARGS="--sample funnel_by_day". Without BUCKET it reads the local stack's emulator (make
# local); with BUCKET, that bucket on AWS with the SDK's credentials. Q is read from the
# environment, so its quotes stay as typed; the command is not echoed, so the output is the rows.
sql: venv
	@test -n "$$Q$(ARGS)" || (echo 'usage: make sql Q="SELECT ..." [BUCKET=<archive bucket>] [ARGS="--format csv|json"]'; exit 2)
	@$(PY) -m clickstream.sql $(if $(BUCKET),--bucket $(BUCKET),--local) $(ARGS) $${Q:+-- "$$Q"}

# The README's cost and benchmark tables, from infra.cost (run again) and bench/results.md.
readme: venv
	$(PY) -m infra.readme --measure-cost

# Speed, cost and freshness figures against baselines measured in the same run -> bench/results.md
bench: venv
	$(PY) -m bench $(ARGS)

# At least 200,000 simulated events through the local stack with faults injected, reconciled;
# first, 200,000 archived events paged out by GET /export (each once, no page over 5 MB, one
# request's memory bounded; the fast tier runs the same test on 30,000).
soak: venv
	CLICKSTREAM_EXPORT_TEST_EVENTS=200000 $(PY) -m pytest -q -p no:cacheprovider tests/unit/test_exports.py -k large_range
	$(PY) -m localdev.soak $(ARGS)
	$(MAKE) soak-kcl
	CLICKSTREAM_SCHEMATHESIS_EXAMPLES=50 CLICKSTREAM_SCHEMATHESIS_PHASES=examples,coverage,fuzzing $(PY) -m pytest -q -p no:cacheprovider --timeout=1800 tests/security/test_schemathesis.py

# The KCL consumers under failure: a worker SIGKILLed between write and checkpoint, a second
# worker taking leases and handing them back, a shard split during traffic (tests/kcl).
soak-kcl: venv
	$(PY) -m pytest -q -p no:cacheprovider --timeout=3600 -m soak tests/kcl

# The aggregates' end-to-end test at real-shop cardinality: 100,000 pages, 10,000 custom types
# (with retries, a skewed clock, four shards, a split and a merge), counted against its ledger.
# 42 to 58 minutes on two cores here (its timeouts allow two hours): the emulator's writes set the pace.
soak-aggregates: venv
	CLICKSTREAM_E2E_PAGES=100000 CLICKSTREAM_E2E_TYPES=10000 $(PY) -m pytest -q -p no:cacheprovider --timeout=10800 tests/integration/test_aggregates_e2e.py

lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e' > requirements-lock.txt

clean:
	rm -rf $(VENV) .local out test-output mutants .pytest_cache .mypy_cache .ruff_cache

# AWS: BUCKET must be a globally unique bucket name; STAGE defaults to dev. Every change to the
# stack is a CloudFormation change set, shown and confirmed (YES=1 runs them without asking).
# With ENDPOINT_URL (or AWS_ENDPOINT_URL) the same steps go to that emulator (localdev.deploy).
ENDPOINT_URL ?= $(AWS_ENDPOINT_URL)
DEPLOY := $(PY) -m $(if $(ENDPOINT_URL),localdev.deploy --endpoint-url $(ENDPOINT_URL),infra.deploy) $(if $(YES),--yes)
deploy: venv
	@test -n "$(BUCKET)" || (echo "usage: make deploy BUCKET=<unique-archive-bucket> [STAGE=dev] [YES=1] [ALARM_EMAIL=you@example.com] [DASHBOARD_BUCKET=<unique-site-bucket>] [PYARROW_LAYER=<layer ARN>] [READ_AUTH=cognito|apikey] [TRUSTED_PROXIES=<CIDRs>] [GRAPHQL_INTROSPECTION=true] [ENDPOINT_URL=<emulator>] [KCL_IMAGE=<image> KCL_SUBNETS=<ids> KCL_SECURITY_GROUPS=<ids> KCL_WORKERS=<n>]"; exit 2)
	$(DEPLOY) up --stage $(STAGE) --stack $(STACK) --bucket $(BUCKET) --alarm-email "$(ALARM_EMAIL)" --dashboard-bucket "$(DASHBOARD_BUCKET)" --pyarrow-layer "$(PYARROW_LAYER)" --read-auth $(READ_AUTH) --trusted-proxies "$(TRUSTED_PROXIES)" --graphql-introspection $(or $(GRAPHQL_INTROSPECTION),false) --kcl-image "$(KCL_IMAGE)" --kcl-subnets "$(KCL_SUBNETS)" --kcl-security-groups "$(KCL_SECURITY_GROUPS)" --kcl-workers $(or $(KCL_WORKERS),2)

# Deletes chalice's deployed record (chalice delete) and the stack (its own buckets emptied first).
destroy: venv
	$(DEPLOY) down --stage $(STAGE) --stack $(STACK)

# No AWS account needed: make deploy + make destroy against the embedded emulator (https on
# loopback), the deployment inspected and the deployed package run; a table of checks.
rehearse: venv
	$(PY) -m localdev.rehearse $(ARGS)
