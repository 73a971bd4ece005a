# Kosmos. `make help` lists the targets; `make test` is what CI runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := bin
KOSMOS    := $(BIN)/kosmos
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
CRD_DIR   := kustomize/base/crds
MCS_CRDS  := multicluster.x-k8s.io_serviceexports.yaml multicluster.x-k8s.io_serviceimports.yaml
# Files `make generate` writes; `make verify` fails when they are stale.
GENERATED := schema/v1alpha1/zz_generated.deepcopy.go schema/kosmos-topology.schema.json docs/topology.md $(wildcard $(CRD_DIR)/*.yaml)
# make install puts bin/kosmos into $(DESTDIR)$(PREFIX)/bin, with the
# kubectl-kosmos link that makes it a kubectl plugin.
PREFIX    ?= /usr/local
DESTDIR   ?=
TESTFLAGS ?=
PKGS      ?= ./...

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/kosmos
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(KOSMOS) ./cmd/kosmos

.PHONY: install
install: build ## Install kosmos and kubectl-kosmos (kubectl kosmos ...) into $(DESTDIR)$(PREFIX)/bin (PREFIX=/usr/local)
	install -d "$(DESTDIR)$(PREFIX)/bin"
	install -m 0755 $(KOSMOS) "$(DESTDIR)$(PREFIX)/bin/kosmos"
	ln -sf kosmos "$(DESTDIR)$(PREFIX)/bin/kubectl-kosmos"

.PHONY: uninstall
uninstall: ## Remove what make install installed
	rm -f "$(DESTDIR)$(PREFIX)/bin/kosmos" "$(DESTDIR)$(PREFIX)/bin/kubectl-kosmos"

.PHONY: generate
generate: ## Regenerate deepcopy code, CRDs and the JSON schema from the Go types
	$(GO) tool controller-gen object:headerFile=hack/boilerplate.go.txt paths=./schema/...
	$(GO) tool controller-gen crd paths=./schema/... output:crd:dir=$(CRD_DIR)
	$(GO) run ./hack/jsonschema
	$(GO) run ./hack/topologydoc
	@# The Multi-Cluster Services CRDs (ServiceExport, ServiceImport), copied from
	@# the sigs.k8s.io/mcs-api module go.mod pins, installed like Kosmos's own.
	mcs=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api); \
	  for f in $(MCS_CRDS); do install -m 0644 "$$mcs/config/crd/$$f" $(CRD_DIR)/$$f; done

.PHONY: verify
verify: ## gofmt, go vet, and generated files up to date
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	@hack/no-conflict-markers.sh
	$(GO) vet ./...
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  for f in $(GENERATED); do mkdir -p "$$tmp/$$(dirname $$f)"; cp "$$f" "$$tmp/$$f"; done; \
	  $(MAKE) --no-print-directory generate >/dev/null; \
	  stale=0; for f in $(GENERATED) $$(ls $(CRD_DIR)/*.yaml); do \
	    if ! cmp -s "$$f" "$$tmp/$$f"; then echo "stale generated file: $$f (run make generate and commit)"; stale=1; fi; \
	  done; exit $$stale
	@echo "verify: ok"

.PHONY: testbin
testbin: ## Provide bin/k8s/{kube-apiserver,etcd,kube-controller-manager} (built once from the Go module proxy, then cached)
	hack/testbin.sh --sandbox

.PHONY: deps
deps: ## Install the Debian packages the tests need (iproute2, iptables, ping, iperf3; promtool from prometheus)
	hack/deps.sh

.PHONY: test
test: verify testbin deps ## Everything CI runs: verify, then every test (real control planes, real kernel networking)
	$(GO) test $(TESTFLAGS) $(PKGS)

.PHONY: demo
demo: build testbin ## The local sandbox: the example topology on this machine (kosmos up; kosmos down stops it)
	$(KOSMOS) up -f topology.example.yaml

.PHONY: down
down: build ## Stop the local sandbox and remove its state
	$(KOSMOS) down

.PHONY: bench
bench: testbin deps ## Run the benchmarks (figures are ratios against a baseline measured in the same run)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 90m $(PKGS)

.PHONY: chaos
chaos: testbin deps ## The full chaos suite: the sandbox's data plane through 90 s API server freezes, leader kills, bad topologies and event storms, counting lost pings
	$(GO) test ./internal/sandbox/chaos -run '^TestChaos$$' -chaos.long -v -count=1 -timeout 60m

.PHONY: fuzz
fuzz: ## Fuzz the topology loader for 60 seconds
	$(GO) test ./schema -run '^$$' -fuzz FuzzLoad -fuzztime 60s

.PHONY: clean
clean: ## Remove build output (the control-plane cache outside the clone stays)
	rm -rf $(BIN)
