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
# The first compiled module: the target make checks.
BUILT := $(firstword $(COMPILED:.py=$(shell $(PYTHON) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")))

$(BUILT): $(COMPILED) deploy/compile.py | $(VENV)/.installed
	$(BIN)/python -c "import mypyc" 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[compile]"
	$(BIN)/python deploy/compile.py > $(VENV)/compile.log 2>&1 \
		|| (echo "search runs uncompiled: deploy/compile.py failed (see $(VENV)/compile.log)" >&2; \
		    $(BIN)/python deploy/compile.py --clean)

compiled: $(BUILT)

serve: $(VENV)/.installed $(BUILT)
	$(BIN)/medcode serve

test: $(VENV)/.installed-dev $(BUILT)
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check services gateway tests bench deploy
	$(BIN)/mypy
	$(BIN)/mypy deploy/compile.py

bench: $(VENV)/.installed-dev $(BUILT)
	$(BIN)/python bench/throughput.py

clean:
	-$(BIN)/python deploy/compile.py --clean
	rm -rf $(VENV) var build
