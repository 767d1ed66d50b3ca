# singleton-webhook — make help lists the targets.
SHELL := /usr/bin/env bash

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= ghcr.io/singleton-webhook/singleton-webhook:$(VERSION)
BIN := $(CURDIR)/bin
K8S_BIN := $(BIN)/k8s
LDFLAGS := -s -w -X main.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
TOOLS_BIN := $(BIN)/tools
HELM := $(TOOLS_BIN)/helm
CHART := charts/singleton-webhook
IMAGE_OUT ?= $(BIN)/image
IMAGE_LICENSES ?= Apache-2.0
# The image's revision label and its one timestamp (the commit's, so a
# rebuild of a commit gives the same digest).
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
FUZZTIME ?= 10s

export KUBEBUILDER_ASSETS := $(K8S_BIN)

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/singleton-webhook.
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/singleton-webhook .

# PREFIX is a directory on $PATH where install-plugin links the plugin.
PREFIX ?= $(HOME)/.local/bin

.PHONY: install-plugin
install-plugin: build ## Link bin/singleton-webhook as kubectl-singleton into PREFIX (default ~/.local/bin): `kubectl singleton status|check`.
	mkdir -p $(PREFIX)
	ln -sf $(BIN)/singleton-webhook $(PREFIX)/kubectl-singleton
	@echo "kubectl singleton: $(PREFIX)/kubectl-singleton -> $(BIN)/singleton-webhook (PREFIX must be on PATH)"

.PHONY: controlplane
controlplane: kwok ## Build kube-apiserver, controller-manager, scheduler, kubectl, etcd and kwok from Go modules into bin/k8s (cached).
	hack/controlplane/build.sh $(K8S_BIN)

.PHONY: kwok
kwok: ## Build kwok (simulated nodes) from its pinned Go module into bin/k8s (cached).
	hack/kwok/build.sh $(K8S_BIN)

.PHONY: run
run: build controlplane ## Run a local cluster (simulated nodes) with the webhook registered (Ctrl-C stops it); ARGS=-for-helm: cert-manager instead, for helm install.
	hack/run.sh $(ARGS)

.PHONY: test
test: lint chart-lint test-unit test-integration test-fuzz ## Everything CI runs (test-integration runs the chart's Go tests too).

.PHONY: test-unit
test-unit: ## Unit tests (no API server).
	go test -race -count=1 ./...

.PHONY: test-integration
test-integration: controlplane build helm ## Tests against a real control plane (and kwok nodes), kubectl and cert-manager; three packages at once (they mostly wait on grace periods and leases), the longest first.
	go test -tags integration -count=1 -timeout 20m -p 3 ./test/cluster/ ./elector/ ./test/install/ ./...

.PHONY: chart-lint
chart-lint: helm ## helm lint and helm template of the chart; its alerts and dashboard through Prometheus's rule loader and PromQL parser (hack/promql).
	$(HELM) lint --strict $(CHART)
	$(HELM) template singleton-webhook $(CHART) --namespace singleton-system >/dev/null
	cd hack/promql && go test -count=1 ./...

.PHONY: test-chart
test-chart: chart-lint controlplane ## chart-lint, then the chart's Go tests: its equivalence with manifests/, its value checks, installs into real clusters.
	go test -tags integration -count=1 -run 'Chart' ./test/install/

.PHONY: helm
helm: ## Build helm from its pinned Go module into bin/tools (cached).
	hack/tools/build.sh $(TOOLS_BIN)

.PHONY: test-fuzz
test-fuzz: ## Run each fuzz target for FUZZTIME (default 10s).
	hack/fuzz.sh $(FUZZTIME)

.PHONY: fuzz
fuzz: ## Fuzz longer: each target for 5 minutes.
	hack/fuzz.sh 5m

.PHONY: bench
bench: build controlplane ## Run the benchmarks and rewrite BENCHMARKS.md.
	hack/bench.sh

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, with the integration and bench tags too.
	go vet ./...
	go vet -tags integration ./...
	go vet -tags bench ./test/bench/

.PHONY: lint
lint: vet ## gofmt check, go vet and staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: $$out"; exit 1; fi
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags integration ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags bench ./test/bench/

.PHONY: manifests
manifests: controlplane ## Render dist/install.yaml (IMG sets the image).
	hack/render-manifests.sh $(IMG)

.PHONY: image
image: ## Build the OCI image (linux/amd64, linux/arm64) into bin/image without a daemon; IMG names it.
	for arch in amd64 arm64; do CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o $(IMAGE_OUT).bin/linux_$$arch/singleton-webhook . || exit 1; done
	go build -o $(TOOLS_BIN)/image ./hack/image
	$(TOOLS_BIN)/image build -binaries $(IMAGE_OUT).bin -out $(IMAGE_OUT) -name $(IMG) -version $(VERSION) \
	  -revision '$(REVISION)' -created '$(SOURCE_DATE_EPOCH)' -licenses '$(IMAGE_LICENSES)' -sbom $(IMAGE_OUT).spdx.json

.PHONY: image-push
image-push: image ## Push the image of make image to IMG (needs a reachable registry; docker login credentials).
	$(TOOLS_BIN)/image push -layout $(IMAGE_OUT) $(IMG)

.PHONY: docker-build
docker-build: ## Build the image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .

.PHONY: deploy
deploy: manifests ## Install into the cluster of the current kubeconfig (needs cert-manager).
	$(K8S_BIN)/kubectl apply --server-side -f dist/install.yaml

.PHONY: undeploy
undeploy: manifests build ## Remove the install: release the singletons first (docs/install.md, Uninstall), then the webhook configuration, so no write is refused meanwhile.
	$(BIN)/singleton-webhook release -A
	$(K8S_BIN)/kubectl delete --ignore-not-found mutatingwebhookconfiguration singleton-webhook
	$(K8S_BIN)/kubectl delete --ignore-not-found -f dist/install.yaml
