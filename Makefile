# cdc-spec — the two commands a newcomer needs:
#   make demo   set up, run every feature against a real stack, build the report
#   make test   set up, run every test (unit, plugin and features) and the linter
#   make engine-stop   stop the Docker engine make setup started
#   make bench  set up, measure each approach's throughput and latency on this machine
.PHONY: setup demo test features unit lint report bench clean engine-stop

VENV := .venv/bin
RESULTS := reports/allure-results
PYTEST := $(VENV)/pytest -p no:cacheprovider --timeout=900
# features on two xdist workers sharing one stack: 155 s instead of 276 s on a 2-core machine
FEATURES := -n 2 -m "not fault" features
# unit, plugin and integration tests on two workers (files kept together): 524 s instead of 781 s
TESTS := -n 2 -m "not fault" tests
# what kills or restarts a stack component needs a stack of its own: no xdist workers sharing it
FAULTS := -m fault tests features/faults
# make test runs every feature natively, then these again as containers (--cdc-backend=docker):
# the P1 PostgreSQL features, one MariaDB outline, one sink outline (with its SIGKILL) and the
# observability features
DOCKER_FEATURES := -n 2 features/postgres/debezium.feature features/postgres/keyless_tables.feature \
  features/postgres/toast.feature features/observability \
  features/mysql/binlog.feature::test_approach_delivers_inserts_updates_and_deletes_with_before_and_after_in_commit_order \
  features/pipelines/lakehouse_sinks.feature::test_source__format_the_sink_worker_killed_with_sigkill_midstream_and_restarted_loses_nothing_and_applies_nothing_twice

setup:
	@bash runtime/setup.sh

demo: setup
	@status=0; $(PYTEST) $(FEATURES) --alluredir=$(RESULTS) --clean-alluredir || status=$$?; \
	$(PYTEST) features/faults --alluredir=$(RESULTS) || status=$$?; \
	$(MAKE) --no-print-directory report && echo "report: open reports/html/index.html" && exit $$status

test: setup lint
	@status=0; $(PYTEST) $(TESTS) --cdc-backend=native --alluredir=$(RESULTS) --clean-alluredir || status=$$?; \
	$(PYTEST) --cdc-backend=native $(FEATURES) --alluredir=$(RESULTS) || status=$$?; \
	$(PYTEST) --cdc-backend=native $(FAULTS) --alluredir=$(RESULTS) || status=$$?; \
	$(PYTEST) --cdc-backend=docker $(DOCKER_FEATURES) || status=$$?; exit $$status

features: setup
	$(PYTEST) $(FEATURES) --alluredir=$(RESULTS) --clean-alluredir

unit: setup
	$(PYTEST) $(TESTS)

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

report:
	$(VENV)/python -m pytest_cdc.report --results $(RESULTS) --output reports/html

bench: setup
	$(VENV)/python -m pytest_cdc.bench $(BENCH_ARGS)

# stop the Docker engine `make setup` started (after removing cdc-spec containers)
engine-stop:
	@bash runtime/engine.sh stop

clean:
	rm -rf reports/allure-results reports/html reports/bench .pytest_cache .ruff_cache
