# The two commands a new user needs:  `make demo`  and  `make test`.
# Both create (or reuse) a virtual environment in $(VENV), install torch==2.13.0 there unless a torch is
# already importable (a system CUDA torch is reused through --system-site-packages), then this package
# with its extras.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.cotracker_fast-installed
TORCH_SPEC ?= torch==2.13.0
CHECKPOINT ?=
DEMO_OUT ?= demo_out

.PHONY: demo test setup clean bench

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*)
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cotracker_fast.demo --out-dir $(DEMO_OUT) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(PY) -m pytest -q benchmarks --benchmark-only --benchmark-json=benchmarks/results/latest.json -p no:cacheprovider

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
