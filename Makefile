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

.PHONY: demo test setup clean bench bench-cpu-ops gpu-check gpu-check-doc readme-figure

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard csrc/*) $(wildcard csrc/cpu/*)
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m cotracker_fast.demo --out-dir $(DEMO_OUT) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT),)

# The README's opening picture: the last frame of the demo's overlay (tracks with trails), written by the demo itself,
# and the error table it printed, which docs/ACCURACY.md quotes.
readme-figure: $(STAMP)
	$(PY) -m cotracker_fast.demo --out-dir $(DEMO_OUT) --figure docs/demo_overlay.png \
	    --results benchmarks/results/demo-shipped-cpu.json

# The unit tests first, then the small CPU run of the speed-comparison suite (a smoke test of the whole harness,
# 2.3 to 3.5 minutes measured on the shared 2-core box; its JSON goes to a temporary file, nothing is written to the
# repository).
test: $(STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q benchmarks -m speed_cpu -p no:cacheprovider \
		--benchmark-json=$${TMPDIR:-/tmp}/cotracker_fast-speed-cpu.json

# All benchmark suites. With CUDA: the GPU cases (the speed suite at full size, T=48 at 384x512, N up to 4096) and
# the older CPU cases, not the small CPU speed run nor the full-size CPU end-to-end run; without CUDA: everything but
# the GPU cases (the CPU end-to-end run, T=24 at 384x512, takes about 10 minutes on 2 cores). The speed suite
# saves benchmarks/results/speed-<device>-<date>.json, then docs/PERFORMANCE.md and its plot are regenerated.
BENCH_SELECT = $(shell $(PY) -c "import torch; print('not speed_cpu and not cpu_e2e' if torch.cuda.is_available() else 'not gpu')" 2>/dev/null || echo "not gpu")

bench: $(STAMP)
	COTRACKER_BENCH_SAVE=1 $(PY) -m pytest -q benchmarks -m "$(BENCH_SELECT)" --benchmark-only \
		--benchmark-json=benchmarks/results/latest.json -p no:cacheprovider
	$(PY) -m benchmarks.make_performance_doc

# The C++ CPU kernels against the PyTorch paths they replace (benchmarks/test_bench_ops.py -k cpu_kernel), saved as
# benchmarks/results/cpu-ops-<cpu>-<date>T<time>.json (written to a temporary name, then moved into place).
bench-cpu-ops: $(STAMP)
	@slug=$$($(PY) -c "import re; from benchmarks._common import cpu_name; print(re.sub('[^a-z0-9]+', '-', cpu_name().lower()).strip('-'))"); \
	out=benchmarks/results/cpu-ops-$$slug-$$(date +%Y-%m-%dT%H%M).json; \
	$(PY) -m pytest -q benchmarks/test_bench_ops.py -k cpu_kernel --benchmark-only -p no:cacheprovider \
		--benchmark-json=$$out.tmp && mv $$out.tmp $$out && echo "written $$out"
	$(PY) -m benchmarks.make_performance_doc

# The GPU proof (benchmarks/gpu_check.py, benchmarks/README.md): CUDA build, every GPU test, the end-to-end,
# kernel and speed benchmarks under a time guard (6 minutes on an H100/H200), results to benchmarks/results/ and
# $(OUT) when set, the gpu-check block of docs/PERFORMANCE.md. No venv is made and nothing is installed: it runs with
# the project venv's python where that exists (a developer's machine), else the machine's python3 (the device
# machine, whose image holds torch, Triton and pytest), the repository on the path.
#   make gpu-check DRY_RUN=1      every stage's code on the CPU at tiny sizes (tests/test_gpu_check.py runs it)
#   make gpu-check RESUME=1       redo only what the newest saved run did not finish (RESUME=<file> for another)
#   make gpu-check COMMIT=<sha>   record the commit where the tree has no git metadata (the device machine's copy)
#   make gpu-check ARGS="..."     more options (python -m benchmarks.gpu_check --help)
CHECK_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))

gpu-check:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(if $(COMMIT),COTRACKER_COMMIT=$(COMMIT)) \
		$(CHECK_PY) -m benchmarks.gpu_check $(if $(filter-out 0,$(DRY_RUN)),--dry-run) \
		$(if $(RESUME),--resume $(if $(filter 1,$(RESUME)),,$(RESUME))) $(ARGS)

# docs/PERFORMANCE.md's gpu-check block from the newest saved GPU run of `make gpu-check`.
gpu-check-doc:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} $(CHECK_PY) -m benchmarks.make_performance_doc --blocks gpu-check

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info
