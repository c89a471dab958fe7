# Each target sets itself up: a local .venv with the CPU build of torch (from local disk here),
# then graphcl with its test extras. Data comes from ../shared/datasets unless GRAPHCL_DATA is set.
PY      := .venv/bin/python
TORCH   ?= torch==2.13.0
TORCH_SPARSE ?= torch-scatter==2.1.2 torch-sparse==0.6.18
export GRAPHCL_DATA ?= $(abspath ../shared/datasets)

.PHONY: venv demo test clean

venv: .venv/.installed

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	# NeighborLoader needs torch-sparse (which imports torch-scatter) when pyg-lib is absent; both build
	# against the installed torch (about 12 minutes once, then from pip's wheel cache)
	$(PY) -c "import torch_sparse" 2>/dev/null || $(PY) -m pip install -q --no-build-isolation $(TORCH_SPARSE)
	$(PY) -m pip install -q -e ".[test,docs,plot,vision]"
	touch $@

demo: venv
	.venv/bin/graphcl train configs/dgi/cora.yaml --out runs/dgi-cora --overwrite

test: venv
	$(PY) -m pytest tests

clean:
	rm -rf .venv runs *.egg-info
