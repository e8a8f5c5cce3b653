# The two commands that set up everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test lint bench compiled clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

# The search ranker's hottest modules, compiled to C by mypyc (deploy/compile.py): compiled
# again when their source changes; where nothing compiles (no C compiler), the source runs.
COMPILED := $(shell $(PYTHON) deploy/compile.py --sources)
# What a compile leaves at the root (its shared runtime library): the target make checks.
RUNTIME := medcode_search__mypyc$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

$(RUNTIME): $(COMPILED) deploy/compile.py | $(VENV)/.installed
	$(BIN)/python -c "import mypyc" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[compile]"
	$(BIN)/python deploy/compile.py > $(VENV)/compile.log 2>&1 \
		|| (echo "search runs uncompiled: deploy/compile.py failed (see $(VENV)/compile.log)" >&2; \
		    $(BIN)/python deploy/compile.py --clean)

compiled: $(RUNTIME)

serve: $(VENV)/.installed $(RUNTIME)
	$(BIN)/medcode serve

test: $(VENV)/.installed-dev $(RUNTIME)
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check services gateway tests bench
	$(BIN)/mypy

bench: $(VENV)/.installed-dev $(RUNTIME)
	$(BIN)/python bench/throughput.py

clean:
	-$(BIN)/python deploy/compile.py --clean
	rm -rf $(VENV) var build
