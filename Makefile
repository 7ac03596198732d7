# Two commands on a fresh machine: `make run` and `make test`.
# Each prepares .venv/ itself; nothing relies on what happens to be installed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv run test lint system-deps bench soak

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,fast]'
	$(BIN)/hybrid install-plugin  # makes `twistd hybrid` findable (see app/twistd_plugin.py)
	touch $@

run: venv
	$(BIN)/hybrid serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

system-deps:
	@sh tests/system-deps.sh

# The whole suite twice: on Twisted's parser and asyncio's loop, then on the fast lane (llhttp and
# uvloop, what `auto` takes when the fast extra is installed). Tests that name a parser or loop
# themselves (tests/hardening, tests/conformance run both parsers) keep their choice.
test: venv system-deps lint
	HYBRID_TEST_HTTP=twisted HYBRID_TEST_LOOP=asyncio $(BIN)/python -m pytest
	HYBRID_TEST_HTTP=httptools HYBRID_TEST_LOOP=uvloop $(BIN)/python -m pytest

# Benchmarks (bench/RESULTS.md, bench/results.png; `hybrid serve` itself: bench/OPS.md); never part of `make test`.
# `make bench QUICK=1` is a ~2 minute smoke run of the same harness.
bench: venv
	sh bench/setup.sh
	$(BIN)/python -m bench --profile $(if $(QUICK),quick,full)
	$(BIN)/python -m bench.ops --markdown bench/OPS.md $(if $(QUICK),--rounds 1 --seconds 3 --held-connections 1000)

# Soak (bench/SOAK.md): mixed traffic with random aborts against `hybrid serve`, then are RSS,
# open fds, delayed calls and tasks flat, and were there 5xx? Never part of `make test`.
SOAK_SECONDS ?= 180
soak: venv
	$(BIN)/python -m bench.soak --duration $(SOAK_SECONDS) --markdown bench/SOAK.md
