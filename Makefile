# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin/bastion
DEV := .dev
DEV_USER ?= $(shell id -un)
PKGS_UNIT = $(shell $(GO) list ./... | grep -v /e2e)

.PHONY: run run-ha build test deps unit e2e bench fuzz soak lint clean

build:
	$(GO) build -o $(BIN) ./cmd/bastion

## run: start the bastion with the dev config, the embedded store in .dev/,
## and your ~/.ssh/*.pub registered as a dev admin.
run: build
	@mkdir -p $(DEV)
	@keys=$$(ls $$HOME/.ssh/*.pub 2>/dev/null | grep -v -- '-cert.pub$$'); \
	extra=""; \
	if [ -z "$$keys" ]; then \
	  [ -f $(DEV)/id_ed25519 ] || ssh-keygen -q -t ed25519 -N '' -C "$(DEV_USER)@bastion-dev" -f $(DEV)/id_ed25519; \
	  keys=$(DEV)/id_ed25519.pub; extra=" -i $(DEV)/id_ed25519"; \
	  echo "No ~/.ssh/*.pub found: made a dev key in $(DEV)/id_ed25519."; \
	fi; \
	args=""; for k in $$keys; do args="$$args --admin-key $$k"; done; \
	echo ""; \
	echo "  Bastion starting on 127.0.0.1:2222 (loopback only) as dev admin '$(DEV_USER)' (keys: $$(echo $$keys))."; \
	echo "  Connect from another terminal:"; \
	echo "      ssh -p 2222$$extra localhost whoami"; \
	echo "      ssh -p 2222$$extra localhost help"; \
	echo "      ssh -p 2222$$extra localhost audit"; \
	echo "  Stop with Ctrl-C. Data lives in $(DEV)/data."; \
	echo ""; \
	exec ./$(BIN) serve --config examples/dev/config.yaml --data $(DEV)/data --admin "$(DEV_USER)" $$args

## run-ha: three etcd members and three replicas on ports 2222-2224.
run-ha:
	@bash scripts/run-ha.sh

## test: install what is missing, then run the unit and end-to-end tests.
test: deps unit e2e

deps:
	@bash scripts/install-deps.sh
	@bash scripts/install-kube.sh
	@bash scripts/install-oidc.sh

unit:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test -count=1 $(PKGS_UNIT)

e2e:
	$(GO) test -count=1 -v -timeout 35m ./e2e/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|\s+\S+_test.go)' ; exit $${PIPESTATUS[0]}

## bench: every benchmark side by side with its peer, with ratios.
bench: deps
	@bash scripts/bench.sh

## soak: the kill -9 durability trials, 50 of them.
soak:
	BASTION_KILL_TRIALS=50 $(GO) test -count=1 -v -timeout 30m -run TestKill9 ./e2e/

## fuzz: every Fuzz target for FUZZTIME (default 30s) each.
fuzz:
	@bash scripts/fuzz.sh

lint:
	gofmt -l .
	$(GO) vet ./...

clean:
	rm -rf bin $(DEV)
