# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# The venv sees system packages so a machine that already has torch (a GPU box) keeps its own build;
# only where no torch is importable do we install the CPU wheel this workplace ships (torch==2.13.0,
# paired with triton 3.7.1), before the project, so that `torch>=2.6` is already satisfied.
# pip keeps no wheel cache: a second copy of torch is gigabytes on a disk that may be small.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TORCHINDUCTOR_CACHE_DIR := $(CURDIR)/.cache/inductor
export TRITON_CACHE_DIR := $(CURDIR)/.cache/triton

.PHONY: demo test lint clean

$(PY):
	$(PYTHON) -m venv --system-site-packages $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --no-cache-dir "torch==2.13.0" "triton==3.7.1"
	$(PY) -m pip install -q --no-cache-dir -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m svg_ear_compile.demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check svg_ear_compile tests benchmarks examples

clean:
	rm -rf $(VENV) .cache
