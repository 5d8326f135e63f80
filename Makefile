# The README's commands. Each target creates the environment it needs.
PY          ?= python3.11
VENV        ?= .venv
# The project's own set-up pins torch (constraints.txt says how to get a CPU or CUDA build elsewhere); or: make CONSTRAINTS=your-file.txt
CONSTRAINTS ?= constraints.txt
BIN         := $(VENV)/bin
OUT         ?= demo-output
# Offline MNIST: the shared copy beside the checkout, when present (else the cache or a verified download)
ifneq ($(wildcard ../shared/data/mnist),)
export AEKIT_MNIST_DIR ?= $(abspath ../shared/data/mnist)
endif

.PHONY: setup browser demo demo-quick test test-slow bench lint clean

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

setup: $(BIN)/.installed

demo: setup  ## the main job: the whole mission on MNIST, plots + report in $(OUT)/
	$(BIN)/aekit demo --overwrite --out $(OUT)

demo-quick: setup
	$(BIN)/aekit demo --quick --overwrite --out $(OUT)-quick

# The browser tests drive Debian's chromium (Playwright never downloads a browser here); installed when we are root with apt
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null || echo "note: apt-get install chromium failed; the browser tests will skip"; fi

test: setup browser  ## the default suite (minutes on 2 cores)
	$(BIN)/python -m pytest -q

test-slow: setup  ## the long tests: full MNIST training, big fuzz runs
	$(BIN)/python -m pytest -q -m slow

bench: setup
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

lint: setup  ## ruff, and mypy on src/aekit (its settings: [tool.mypy] in pyproject.toml)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(OUT) $(OUT)-quick .pytest_cache .mypy_cache
