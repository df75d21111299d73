# README's test command is `make test`; .ci/run starts PostgreSQL and Redis and then calls it.
GO ?= go
MODULE := github.com/ony-ai/ony
FUZZTIME ?= 30s

.PHONY: test vet fmtcheck unit build fuzz bench bench-quick bench-go docker-check

# The browser tests (console) and the end-to-end tests that run the real binary (cmd/ony) each load
# both cores; run side by side under -race they starved each other's servers past the tests' deadlines
# (CI, 2 cores). They run after the rest, one package at a time.
SERIAL := ./console ./cmd/ony
test: vet fmtcheck
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v -x -e '$(MODULE)/console' -e '$(MODULE)/cmd/ony')
	$(GO) test -race -count=1 -timeout 20m -p 1 $(SERIAL)

vet:
	$(GO) vet ./...

fmtcheck:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# `ony version` names the commit and build time stamped here; VERSION=v1.2.0 names a release.
VERSION_PKG := github.com/ony-ai/ony/internal/version
build:
	$(GO) build -ldflags "-X $(VERSION_PKG).commit=$$(git rev-parse HEAD 2>/dev/null) \
		-X $(VERSION_PKG).date=$$(date -u +%Y-%m-%dT%H:%M:%SZ) $(if $(VERSION),-X $(VERSION_PKG).version=$(VERSION))" \
		-o bin/ony ./cmd/ony

# Longer fuzzing than the seed corpora that `make test` runs.
fuzz:
	$(GO) test -run=^$$ -fuzz=FuzzDecodeCreate -fuzztime=$(FUZZTIME) ./server/
	$(GO) test -run=^$$ -fuzz=FuzzLoad -fuzztime=$(FUZZTIME) ./config/
	$(GO) test -run=^$$ -fuzz=FuzzDerive -fuzztime=$(FUZZTIME) ./risk/
	$(GO) test -run=^$$ -fuzz=FuzzRedact$$ -fuzztime=$(FUZZTIME) ./redact/
	$(GO) test -run=^$$ -fuzz=FuzzRedactJSON -fuzztime=$(FUZZTIME) ./redact/
	$(GO) test -run=^$$ -fuzz=FuzzParsePolicy -fuzztime=$(FUZZTIME) ./risk/
	$(GO) test -run=^$$ -fuzz=FuzzOpen -fuzztime=$(FUZZTIME) ./auth/keyring/
	$(GO) test -run=^$$ -fuzz=FuzzVerifyPassword -fuzztime=$(FUZZTIME) ./auth/
	$(GO) test -run=^$$ -fuzz=FuzzRun -fuzztime=$(FUZZTIME) ./internal/hook/
	$(GO) test -run=^$$ -fuzz=FuzzVerifyExport -fuzztime=$(FUZZTIME) ./audit/
	$(GO) test -run=^$$ -fuzz=FuzzBundle -fuzztime=$(FUZZTIME) ./store/
	$(GO) test -run=^$$ -fuzz=FuzzParse -fuzzminimizetime=5s -fuzztime=$(FUZZTIME) ./escalation/
	$(GO) test -run=^$$ -fuzz=FuzzInteraction -fuzztime=$(FUZZTIME) ./bot/slack/
	$(GO) test -run=^$$ -fuzz=FuzzCommand -fuzztime=$(FUZZTIME) ./bot/slack/
	$(GO) test -run=^$$ -fuzz=FuzzUpdate -fuzztime=$(FUZZTIME) ./bot/telegram/
	$(GO) test -run=^$$ -fuzz=FuzzCallbackData -fuzztime=$(FUZZTIME) ./bot/telegram/
	$(GO) test -run=^$$ -fuzz=FuzzNormalizeLinkCode -fuzztime=$(FUZZTIME) ./org/
	$(GO) test -run=^$$ -fuzz=FuzzNormalizePhoneCode -fuzztime=$(FUZZTIME) ./org/
	$(GO) test -run=^$$ -fuzz=FuzzParseReply -fuzztime=$(FUZZTIME) ./voice/
	$(GO) test -run=^$$ -fuzz=FuzzKeypad -fuzztime=$(FUZZTIME) ./voice/
	$(GO) test -run=^$$ -fuzz=FuzzWebhook$$ -fuzztime=$(FUZZTIME) ./voice/twilio/
	$(GO) test -run=^$$ -fuzz=FuzzSMSWebhook -fuzztime=$(FUZZTIME) ./voice/telnyx/
	$(GO) test -run=^$$ -fuzz=FuzzCallWebhook -fuzztime=$(FUZZTIME) ./voice/telnyx/
	$(GO) test -run=^$$ -fuzz=FuzzWebhooks -fuzztime=$(FUZZTIME) ./voice/plivo/

# The whole server under load (bench/cmd/onybench, its own module): real `ony serve` processes on
# PostgreSQL (127.0.0.1:5432 or ONY_TEST_POSTGRES_URL) and SQLite, Redis for the across-replicas case,
# pgbench as the baseline. `bench` takes about 15 minutes and rewrites the performance section of
# docs/benchmarks.md; `bench-quick` runs every scenario once at tiny sizes in seconds and prints the
# section instead (no timing assertions: it checks the harness). BENCH_FLAGS passes more flags, e.g.
# BENCH_FLAGS='-scenario ingest -dialect postgres -profile /tmp/prof'.
bench:
	cd bench && $(GO) run ./cmd/onybench -mode full $(BENCH_FLAGS)

bench-quick:
	cd bench && $(GO) test -count=1 ./cmd/onybench && $(GO) run ./cmd/onybench -mode quick $(BENCH_FLAGS)

# The in-process Go benchmarks (testing.B) of every package.
bench-go:
	$(GO) test -run=^$$ -bench=. -benchmem ./...

# Builds the container image (Dockerfile) and runs `ony version` in it. Needs a usable Docker daemon,
# so it is not part of `make test`; there, ./deploy checks the Dockerfile against go.mod and builds the
# binary with the Dockerfile's flags to prove it static (docs/operations.md, "Container").
DOCKER ?= docker
DOCKER_IMAGE ?= ony:check
docker-check:
	@$(DOCKER) info >/dev/null 2>&1 || { echo "docker-check: no usable Docker daemon ($(DOCKER) info failed)"; exit 1; }
	$(DOCKER) build --build-arg VERSION=docker-check --build-arg COMMIT=$$(git rev-parse HEAD 2>/dev/null) -t $(DOCKER_IMAGE) .
	$(DOCKER) run --rm $(DOCKER_IMAGE) version | grep -q 'ony docker-check'
	@echo "docker-check: $(DOCKER_IMAGE) builds and runs"
