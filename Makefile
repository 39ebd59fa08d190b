# cdc-spec — the two commands a newcomer needs:
#   make demo   set up, run every feature against a real stack, build the report
#   make test   set up, run every test (unit, plugin and features) and the linter
#   make bench  set up, measure each approach's throughput and latency on this machine
.PHONY: setup demo test features unit lint report bench clean

VENV := .venv/bin
RESULTS := reports/allure-results
PYTEST := $(VENV)/pytest -p no:cacheprovider --timeout=900

setup:
	@bash runtime/setup.sh

demo: setup
	@status=0; $(PYTEST) features --alluredir=$(RESULTS) --clean-alluredir || status=$$?; \
	$(MAKE) --no-print-directory report && echo "report: open reports/html/index.html" && exit $$status

test: setup lint
	$(PYTEST) tests features --alluredir=$(RESULTS) --clean-alluredir

features: setup
	$(PYTEST) features --alluredir=$(RESULTS) --clean-alluredir

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
