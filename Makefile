# faultline — build, test, demo, bench. `make help` lists the targets.
GO       ?= go
BIN      ?= bin/faultline
PKGS     ?= ./...
BENCHTIME ?= 3x

.PHONY: help build test lint generate demo bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/faultline
	$(GO) build -o $(BIN) ./cmd/faultline

test: ## run every test (no cluster, no network beyond loopback)
	$(GO) test -timeout 20m $(PKGS)

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

bench: ## benchmarks; ratios are measured side by side in one run
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 30m $(PKGS)

fuzz: ## fuzz the scenario loaders for a while each
	$(GO) test -run '^$$' -fuzz FuzzLoadYAML -fuzztime 60s ./schema
	$(GO) test -run '^$$' -fuzz FuzzLoadCUE -fuzztime 60s ./schema

clean: ## remove build output
	rm -rf bin out
