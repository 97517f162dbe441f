# duplexloom — every target installs what it needs into .venv (apt packages too; run as root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# FFmpeg's libraries (Debian 12 names) for torchcodec, which datasets' Audio decodes with (tests);
# festival voices are the aligner bench's held-out non-espeak voices.
APT_PACKAGES := espeak-ng libespeak-ng1 libsndfile1 chromium fonts-wqy-microhei \
  libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4 \
  festival festvox-kallpc16k festvox-us-slt-hts
export PYTHONUNBUFFERED := 1

.PHONY: install test test-fast lint schemas bench demo aligner-model clean

$(STAMP): pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools>=69,<82' wheel Cython numpy
	$(PY) -m pip install -q -e '.[dev,gcp,aws]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

schemas: $(STAMP)
	$(PY) -m duplexloom.schemas.export

bench: $(STAMP)
	$(PY) -m tests.bench $(BENCH)

demo: $(STAMP)
	$(VENV)/bin/duplexloom run --out out/demo

# Two stages: the base recipe from scratch, then the varied recipe (every espeak-ng variant,
# augmentation chain) continuing from it (duplexloom/tools/aligner_model.py, aligners/train_tiny.py).
aligner-model: $(STAMP)
	$(PY) -m duplexloom.tools.aligner_model --recipe base --out out/aligner-base
	$(PY) -m duplexloom.tools.aligner_model --recipe varied --init out/aligner-base

clean:
	rm -rf out .pytest_cache .ruff_cache
