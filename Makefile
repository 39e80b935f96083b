# poolproof: the commands a developer and CI run. README.md names `make test`.
GO ?= go
PKGS ?= ./...

.PHONY: test lint bench build certify examples

# test: every package with the race detector, then the certifications
# whose verdicts are timing measurements, which the race detector distorts
# (they skip themselves under -race); the reference certifications, the
# correct-client controls (reference, a Do-only plain client and a retrying
# client on HTTP/1.1 and HTTP/2) and the broken-client gallery in separate
# processes, so the gallery's deliberate
# leaks never load the reference's timing; the proxy catalog through the
# shipped and the broken proxy configurations (nginx and haproxy needed);
# fresh results, no cache.
test:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	$(GO) test -count=1 -timeout 30m -run 'TestReferenceCertifies|TestPoolParametersKeptCertify' -v ./scenarios/
	$(GO) test -count=1 -timeout 30m -run 'TestCorrectClientsCertifyOnBothProtocols' -v ./scenarios/
	$(GO) test -count=1 -timeout 30m -run 'TestBrokenClientsAreCaught|TestNewClientPerRequestGetsAWholeCertificate' -v ./scenarios/
	$(GO) test -count=1 -timeout 30m -run 'TestProxies' -v ./proxy/
	$(GO) test -count=1 -timeout 30m -run 'TestSweepKneeMatchesLittlesLaw|TestGoDriverCertifiesTheQuickCatalog|TestSweepOfADriverVariesTheLoadAndPrintsTheSpread|TestExploreFindsAndShrinksAGalleryBug' -v ./sweep/ ./driver/ ./cmd/poolproof/
	$(MAKE) examples

# examples: the two team repositories of examples/teams, run as their own
# CI runs them: the Go team's suites (its own module), the Python team's
# certify.sh through a driver and a contract file.
examples:
	cd examples/teams/checkout-go && $(GO) test -count=1 -timeout 10m ./...
	$(GO) build -o bin/poolproof ./cmd/poolproof
	PATH="$(CURDIR)/bin:$$PATH" PPDRIVER_DIR="$(CURDIR)/drivers/python" examples/teams/orders-python/certify.sh

# lint: go vet plus a gofmt check that fails when any file needs formatting.
lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# bench: the speed and memory goals, compared as ratios within one run.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

build:
	$(GO) build -o bin/poolproof ./cmd/poolproof

# certify: the main job, certifying the reference client on the embedded environment.
certify:
	$(GO) run ./cmd/poolproof certify
