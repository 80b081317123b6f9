# Two commands do everything on a fresh machine:  `make run`  and  `make test`.
# Each creates/updates the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
# The original 20 Newsgroups archive, found beside the project when the user names none; absolute, because
# notebooks run with their own folder as working directory.
TEXTLAB_20NG ?= $(abspath $(firstword $(wildcard ../shared/data/20news-bydate.tar.gz)))
export TEXTLAB_20NG

.PHONY: run study test lab venv describe bench lock

# constraints.txt: the exact version of every package the committed run was made with (torch aside), so that a fresh
# clone installs them and its runs' manifests match; `make lock` rewrites it from the environment in $(VENV).
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: the CPU build on this machine. On a GPU, install your CUDA build of
	# torch into $(VENV) before `make` and this line keeps it (a satisfied requirement installs nothing).
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

LOCK_HEADER := \# The exact versions the committed run was made with: written by make lock, read by make (torch: the Makefile pins it)
lock: venv
	{ echo "$(LOCK_HEADER)"; $(PY) -m pip freeze --exclude-editable | grep -v -i -E '^(torch|nvidia-|triton)'; } \
		> constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

venv: $(VENV)/.installed

run: venv
	$(PY) -m textlab run --profile $(PROFILE)

# The committed study: the cpu profile trained with three seeds (42, 43, 44). It writes figures/, notebooks/ and the
# README's and docs' result blocks; a killed run resumes inside the seed it was in.
study: venv
	$(PY) -m textlab run --profile study

# JupyterLab on notebooks/ with the environment `make run` uses: the same data ($(TEXTLAB_20NG)) and profile.
lab: venv
	TEXTLAB_PROFILE=$(PROFILE) $(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

test: venv
	$(VENV)/bin/ruff check .
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TEXTLAB_PROFILE=smoke $(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 $(PYTEST_ARGS)

describe: venv
	$(PY) -m textlab describe --arch bert-base-uncased

bench: venv
	$(PY) benchmarks/bench_train.py $(BENCH_ARGS)
