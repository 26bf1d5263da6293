# ctcd — every target bootstraps what it needs (a uv-managed .venv from the committed lock).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
STAMP := $(VENV)/.synced

.DEFAULT_GOAL := help
.PHONY: help setup run demo-ct test fuzz soak test-fast lint compile check-compiled bench argo-examples refresh-crds images up down status reset clean

help: ## List every target
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || { echo "installing uv…"; $(PYTHON) -m pip install --quiet --disable-pip-version-check uv; }
	@echo "creating .venv from uv.lock (about 10 s with a warm cache, 2 minutes on a new machine)…"
	$(UV) sync --frozen --quiet
	$(BIN)/python -m workflows.local.bytecode
	@touch $@

setup: $(STAMP) ## Create .venv from uv.lock (a few seconds once cached)

run: $(STAMP) ## Bring up the embedded platform and run the main job on it
	$(BIN)/ctcd up
	$(BIN)/ctcd data seed
	$(BIN)/ctcd submit --from workflowtemplate/train-all --wait
	$(BIN)/ctcd models
	$(BIN)/ctcd serving wait
	$(BIN)/ctcd get isvc -A
	$(BIN)/ctcd predict intent-classifier
	$(BIN)/ctcd predict invoice-matcher
	$(BIN)/ctcd status

DEMO_RULE := gitops/models/intent-classifier/overlays/staging/analysis.yaml

demo-ct: $(STAMP) ## Three months of continuous training; each canary judged by the analysis on simulated traffic
	$(BIN)/ctcd up
	@tmp=$$(mktemp -d) && git clone -q $${CTCD_STATE_DIR:-.ctcd}/gitops.git $$tmp && mkdir -p $$tmp/$$(dirname $(DEMO_RULE)) && \
	  cp docs/demo/analysis.yaml $$tmp/$(DEMO_RULE) && git -C $$tmp add -A && \
	  { git -C $$tmp diff --cached --quiet || git -C $$tmp -c user.name=demo -c user.email=demo@ctcd.invalid \
	    commit -qm "Canary analysis rule for the demo" && git -C $$tmp push -q origin HEAD:main; }; rm -rf $$tmp
	@for rows in 1000 1000 1200; do \
	  $(BIN)/ctcd submit --from workflowtemplate/continuous-training -p technique=intent-classifier \
	    -p rows=$$rows --wait -o name || exit 1; \
	  $(BIN)/ctcd models; \
	  for round in 1 2 3 4; do \
	    $(BIN)/ctcd serving wait >/dev/null; \
	    $(BIN)/ctcd simulate intent-classifier --requests 8000 --seed $$rows$$round || exit 1; \
	    $(BIN)/ctcd analyze intent-classifier | tee $${CTCD_STATE_DIR:-.ctcd}/demo-round.txt; \
	    grep -q -e "rolled out" -e "rolled back" -e "no live canary" -e "git moved on" $${CTCD_STATE_DIR:-.ctcd}/demo-round.txt && break; \
	  done; \
	done
	$(BIN)/ctcd history intent-classifier --env staging
	$(BIN)/ctcd get isvc

test: $(STAMP) ## Check compiled YAML, then run the whole test suite (starts its own throwaway platform)
	$(BIN)/ctcd compile --check
	$(BIN)/pytest

fuzz: $(STAMP) ## The fuzz tests with 10,000 generated inputs each, and 20 sequences of 30 moves of the delivery loop (make test runs 200, and two of 5)
	CTCD_FUZZ_EXAMPLES=$${CTCD_FUZZ_EXAMPLES:-10000} CTCD_LOOP_SEQUENCES=$${CTCD_LOOP_SEQUENCES:-20} \
	  CTCD_LOOP_MOVES=$${CTCD_LOOP_MOVES:-30} CTCD_LOOP_TRAININGS=$${CTCD_LOOP_TRAININGS:-2} $(BIN)/pytest -m fuzz -q

soak: $(STAMP) ## Restart and kill -9 random services under traffic for CTCD_SOAK_SECONDS (180), checking each round
	$(BIN)/python -m tests.soak

test-fast: $(STAMP) ## The lanes that need no services: tests/unit and tests/engine
	$(BIN)/pytest tests/unit tests/engine

lint: $(STAMP) ## ruff (E, F, I, D, B), mypy, the layer contracts (import-linter) and the secret scan
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m tests.secret_scan

compile: $(STAMP) ## Compile the Hera templates and each technique's KServe base into gitops/
	$(BIN)/ctcd compile

check-compiled: $(STAMP) ## Fail if committed compiled YAML differs from a fresh compile
	$(BIN)/ctcd compile --check

bench: $(STAMP) ## Print benchmark figures against peers (and write bench-results/*.json)
	$(BIN)/python -m tests.bench.serving_peers
	$(BIN)/python -m tests.bench.serving_memory
	$(BIN)/python -m tests.bench.engine_overhead
	$(BIN)/python -m tests.bench.scale
	$(BIN)/python -m tests.bench.registry_sync
	$(BIN)/python -m tests.bench.pipeline
	$(BIN)/python -m tests.bench.cold_start
	$(BIN)/python -m tests.bench.clinc150

argo-examples: $(STAMP) ## Run Argo's upstream examples (ARGO_EXAMPLES=…/argo-workflows/examples) on the local engine
	@if [ ! -d "$(ARGO_EXAMPLES)" ]; then \
	  echo "set ARGO_EXAMPLES to the examples/ folder of an argo-workflows checkout"; \
	  echo "  e.g. git clone --depth 1 https://github.com/argoproj/argo-workflows && make argo-examples ARGO_EXAMPLES=argo-workflows/examples"; \
	  exit 2; fi
	$(BIN)/python -m tests.bench.argo_examples "$(ARGO_EXAMPLES)" --jobs $${JOBS:-6}

refresh-crds: $(STAMP) ## Re-vendor the upstream CRDs in tests/crds from local snapshots (CRD_SNAPSHOTS=DIR of <owner>+<name>/repo git dirs)
	@if [ ! -d "$(CRD_SNAPSHOTS)" ]; then \
	  echo "set CRD_SNAPSHOTS to a folder holding <owner>+<name>/repo git directories of the repositories in tests/crds/sources.json"; \
	  exit 2; fi
	$(BIN)/python -m tests.crds.refresh "$(CRD_SNAPSHOTS)"

IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
images: ## Build the trainer and predictor images (needs a Docker engine)
	@if ! docker info >/dev/null 2>&1; then \
	  echo "make images: no Docker engine answers on this machine (docker info failed)."; \
	  echo "Build on a machine with Docker, or in CI (.github/workflows/main.yaml builds and pushes them)."; \
	  exit 1; fi
	docker build -f workflows/Dockerfile --build-arg GIT_COMMIT=$$(git rev-parse HEAD) -t ghcr.io/ctcd/trainer:$(IMAGE_TAG) .
	docker build -f serving/Dockerfile -t ghcr.io/ctcd/predictor:$(IMAGE_TAG) .
	@echo "compile the templates against these tags with: CTCD_IMAGE_TAG=$(IMAGE_TAG) make compile"

up: $(STAMP) ## Start the embedded platform (SeaweedFS S3, MLflow, local serving, registry bridge)
	$(BIN)/ctcd up

down: $(STAMP) ## Stop the embedded platform
	$(BIN)/ctcd down

status: $(STAMP) ## Show the embedded platform's services
	$(BIN)/ctcd status

reset: $(STAMP) ## Stop the platform and delete its state folder, keeping .venv (asks first)
	$(BIN)/ctcd reset

clean: ## Stop the platform and remove .venv and local state
	-[ -x $(BIN)/ctcd ] && $(BIN)/ctcd down
	rm -rf $(VENV) .ctcd
