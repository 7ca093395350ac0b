# EnPACT developer entry points. The two a newcomer needs:
#   make demo   set up .venv and run the whole pipeline on the bundled demo data (results in ./results)
#   make test   set up .venv with the test tools and run the full test suite
VENV ?= .venv
export ENPACT_VENV := $(VENV)

.PHONY: demo test setup setup-dev images benchmarks-quick demo-data clean

demo: setup
	$(VENV)/bin/enpact run

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
