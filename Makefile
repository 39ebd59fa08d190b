# cdc-spec — the two commands a newcomer needs:
#   make demo   set up, run every feature against a real stack, build the report
#   make test   set up, run every test (unit, plugin and features) and the linter
#   make bench  set up, measure each approach's throughput and latency on this machine
.PHONY: setup demo test features unit lint report bench clean

VENV := .venv/bin
RESULTS := reports/allure-results
PYTEST := $(VENV)/pytest -p no:cacheprovider --timeout=900
# features on two xdist workers sharing one stack: 155 s instead of 276 s on a 2-core machine
FEATURES := -n 2 features

setup:
	@bash runtime/setup.sh

demo: setup
	@status=0; $(PYTEST) $(FEATURES) --alluredir=$(RESULTS) --clean-alluredir || status=$$?; \
	$(MAKE) --no-print-directory report && echo "report: open reports/html/index.html" && exit $$status

test: setup lint
	@status=0; $(PYTEST) tests --alluredir=$(RESULTS) --clean-alluredir || status=$$?; \
	$(PYTEST) $(FEATURES) --alluredir=$(RESULTS) || status=$$?; exit $$status

features: setup
	$(PYTEST) $(FEATURES) --alluredir=$(RESULTS) --clean-alluredir

unit: setup
	$(PYTEST) tests

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

report:
	$(VENV)/python -m pytest_cdc.report --results $(RESULTS) --output reports/html

bench: setup
	$(VENV)/python -m pytest_cdc.bench $(BENCH_ARGS)

clean:
	rm -rf reports/allure-results reports/html reports/bench .pytest_cache .ruff_cache
