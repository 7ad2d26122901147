# codequant developer entry points. `make install && make test` works on a fresh machine.
VENV ?= .venv
PYTHON ?= python3.11
BIN := $(VENV)/bin
SERVICES := executor reporter generator serving quantizer orchestrator
EDITABLES := -e shared $(foreach s,$(SERVICES),-e services/$(s)) -e models/tiny -e 'services/quantizer[compressors]' -e 'services/serving[formats]'

.PHONY: install system test test-fast lint format demo clean engine images compose-test

install: $(VENV)/.installed

$(VENV)/.installed: shared/pyproject.toml $(wildcard services/*/pyproject.toml) models/tiny/pyproject.toml constraints.txt requirements-dev.txt scripts/setup-system.sh
	bash scripts/setup-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU machines: pin the CPU build of torch (a looser requirement pulls a multi-GB CUDA build).
	command -v nvidia-smi >/dev/null || $(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt $(EDITABLES) -r requirements-dev.txt
	touch $@

system:
	bash scripts/setup-system.sh

test: install
	$(BIN)/pytest

# The shared library and the torch-free services without the slow tests; a test that imports torch fails.
# The executor's tests run on their own: they check the whole host for stray sandbox processes.
test-fast: install
	$(BIN)/pytest -q -m "not slow" --forbid-torch -n 2 tests/foundation tests/deploy tests/reporter tests/generator
	$(BIN)/pytest -q -m "not slow" --forbid-torch tests/executor

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The Docker engine (Debian's docker.io and the Compose v2 plugin; started when not running), codequant's images
# (on a host without a registry: a local Debian base and a wheelhouse first), and the compose stack's
# end-to-end, fault, attack and API tests on one stack (builds the images and runs it; docs/deployment.md).
engine:
	bash scripts/docker-engine.sh

images: engine
	bash scripts/build-images.sh

compose-test: install engine
	$(BIN)/pytest -v tests/deploy/test_compose_api.py tests/deploy/test_compose_attack.py tests/deploy/test_compose_stack.py

demo: install
	$(BIN)/codequant run examples/demo.yaml

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
