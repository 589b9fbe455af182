# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS_STAMP := $(VENV)/.installed-extras

.PHONY: demo test bench clean-venv

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: a CPU wheel lies on disk; an unpinned torch pulls a CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hmrkit run assets/samples/astronaut.png --out out --overwrite

# the optional extras (Ray, viser): their tests run for real instead of skipping
$(EXTRAS_STAMP): $(STAMP) requirements-extras.txt
	$(PY) -m pip install -q -r requirements-extras.txt
	touch $(EXTRAS_STAMP)

test: $(EXTRAS_STAMP)
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
