# faultline — build, test, demo, bench. `make help` lists the targets.
GO       ?= go
BIN      ?= bin/faultline
PKGS     ?= ./...
BENCHTIME ?= 3x

.PHONY: help build test e2e tsc editor lint generate demo bench fuzz publish-schema base-image image clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/faultline
	$(GO) build -o $(BIN) ./cmd/faultline

test: tsc editor ## run every test (no cluster, no network beyond loopback)
	$(GO) test -timeout 20m $(PKGS)
	cd runner/report/grafanacheck && $(GO) test ./...

e2e: ## end-to-end tests against Chaos Mesh's real controller-manager and a real kube-apiserver (e2e/; builds them into bin/e2e first: ~15 min cold, ~1 min warm)
	cd e2e && $(GO) test -count=1 -timeout 60m ./...

tsc: compiler/k6/tsc/node_modules ## install the pinned TypeScript and @types/k6 the compiled scripts are type-checked against

compiler/k6/tsc/node_modules: compiler/k6/tsc/package-lock.json
	@if command -v npm >/dev/null; then cd compiler/k6/tsc && npm ci --no-audit --no-fund && touch node_modules; \
	else echo "npm not found: the @types/k6 type check of compiled scripts is skipped (apt-get install -y npm)"; fi

editor: schema/editor/node_modules ## install the pinned yaml-language-server the exported JSON Schema is tested in

schema/editor/node_modules: schema/editor/package-lock.json
	@if command -v npm >/dev/null; then cd schema/editor && npm ci --no-audit --no-fund && touch node_modules; \
	else echo "npm not found: the yaml-language-server test of the JSON Schema is skipped (apt-get install -y npm)"; fi

lint: ## gofmt, go vet, and the scenario library through vet and cue vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run ./cmd/faultline vet scenarios/
	$(GO) tool cue vet -c ./scenarios/...

generate: build ## regenerate generated files: vendored schema, JSON Schema, Chaos Mesh CRDs
	$(BIN) schema vendor .
	$(BIN) schema jsonschema -f schema/scenario.schema.json
	bash hack/gen-crds.sh

demo: build ## the main job on the embedded default: a local run of checkout-jitter against the demo target (about a minute)
	$(BIN) vet scenarios/
	$(BIN) run scenarios/checkout-jitter.cue

bench: build ## benchmarks, ratios measured side by side in one run (needs wrk: apt-get install -y wrk); then the 10-minute RSS run
	$(GO) test -run '^$$' -bench . -skip BenchmarkRunRSS -benchtime $(BENCHTIME) -timeout 30m $(PKGS)
	$(GO) test -run '^$$' -bench BenchmarkRunRSS -benchtime 1x -timeout 20m ./cmd/faultline

fuzz: ## fuzz the scenario loaders for a while each
	$(GO) test -run '^$$' -fuzz FuzzLoadYAML -fuzztime 60s ./schema
	$(GO) test -run '^$$' -fuzz FuzzLoadCUE -fuzztime 60s ./schema

SCHEMA_VERSION ?= $(shell sed -n 's/^const ModuleVersion = "\(.*\)"$$/\1/p' schema/module.go)

publish-schema: ## publish the schema as the CUE module faultline.dev/schema@$(SCHEMA_VERSION) (cue mod publish) to CUE_REGISTRY
	SCHEMA_VERSION=$(SCHEMA_VERSION) bash hack/publish-schema.sh

base-image: ## push faultline's base image (CA roots, passwd, /tmp; no shell) to KO_DEFAULTBASEIMAGE
	@test -n "$(KO_DEFAULTBASEIMAGE)" || { echo "set KO_DEFAULTBASEIMAGE=REGISTRY/REPO:TAG"; exit 2; }
	$(GO) run ./hack/base-image $(KO_DEFAULTBASEIMAGE)

image: ## build faultline's image with the pinned ko and push it to KO_DOCKER_REPO (base: KO_DEFAULTBASEIMAGE; make base-image)
	@test -n "$(KO_DOCKER_REPO)" -a -n "$(KO_DEFAULTBASEIMAGE)" || { echo "set KO_DOCKER_REPO=REGISTRY/REPO and KO_DEFAULTBASEIMAGE=REGISTRY/REPO:TAG"; exit 2; }
	$(GO) tool -modfile=tools/ko/go.mod ko build --bare --sbom=none $(KOFLAGS) ./cmd/faultline

clean: ## remove build output
	rm -rf bin out
