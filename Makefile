# EnPACT developer entry points. The two a newcomer needs:
#   make demo   set up .venv and run the whole pipeline on the bundled demo data (results in ./results)
#   make test   set up .venv with the test tools and run the full test suite
# and, for a study of your own without putting .venv/bin on PATH:
#   make run PARAMS=params.yaml   [ARGS="--no-progress"]   (= enpact run --params params.yaml)
# Needs GNU make, bash and python3 >= 3.10 with venv (Debian/Ubuntu: apt-get install make python3-venv).
VENV ?= .venv
export ENPACT_VENV := $(VENV)

.PHONY: demo run test setup setup-dev images benchmarks-quick demo-data clean

demo: setup
	$(VENV)/bin/enpact run
	@echo "demo done: open results/report/index.html. To run enpact yourself: source $(VENV)/bin/activate, then" \
	    "enpact run --params params.yaml (or, without activating: make run PARAMS=params.yaml)"

run:
	@test -n "$(PARAMS)" || { echo "usage: make run PARAMS=params.yaml [ARGS='more enpact run options']" >&2; exit 2; }
	bash scripts/setup.sh
	$(VENV)/bin/enpact run --params "$(PARAMS)" $(ARGS)

test: setup-dev
	bash scripts/run-tests.sh

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

# the container images the Nextflow profiles docker/singularity/apptainer use (cpu_container, gpu_container)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
images:
	docker build -f containers/Dockerfile -t enpact:$(VERSION) .
	docker build -f containers/Dockerfile.gpu -t enpact:$(VERSION)-gpu .

benchmarks-quick: setup-dev
	$(VENV)/bin/python benchmarks/run_all.py --size quick

demo-data: setup-dev
	$(VENV)/bin/python scripts/make_demo_data.py

clean:
	rm -rf results .pytest_cache
