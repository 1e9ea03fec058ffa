# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install everything, convene a council on the bundled local model
#   make test   create/update .venv, then lint, type-check and run the whole test suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.council-installed
LLAMA_CPP_VERSION := 0.3.36
# llama-cpp-python is built from source without native CPU flags: a native build compiles in
# Intel AMX, which these virtual CPUs report but fault on (every model segfaults on its first
# token). The built wheel is kept outside the clone, per version, so later clones skip the build.
WHEELHOUSE ?= $(HOME)/.cache/council/wheels-nonnative
QUESTION ?= Should cities ban private cars from their centres?

.PHONY: demo test lint install bench experiments clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip wheel --no-cache-dir --no-deps \
		--wheel-dir $(WHEELHOUSE) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	$(BIN)/python -m pip install --quiet --find-links $(WHEELHOUSE) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/council convene "$(QUESTION)"

lint: $(STAMP)
	$(BIN)/ruff check council tests examples
	$(BIN)/ruff format --check council tests examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The offline experiments behind docs/findings.md (about 45 minutes on 2 cores).
experiments: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[experiments]"
	$(BIN)/council experiment diversity --personas popper,kuhn,hayek,keynes \
		--questions examples/questions.txt --samples 3 --out docs/experiments/diversity \
		--arms single=local/smollm2-135m-instruct \
		cross=local/smollm2-135m-instruct,local/qwen2.5-coder-0.5b-instruct
	$(BIN)/council experiment variants \
		--pairs anthropologist,learning-scientist,nurse,structural-engineer,economist \
		--questions examples/questions.txt --samples 2 --protocol quick --out docs/experiments/variants

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
