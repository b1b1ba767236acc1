# bluegreen: see README.md, section Development.
GO ?= go

.PHONY: build image test torture fuzz bench run clean

# The binaries: CoreDNS with every in-tree plugin plus bluegreen, and bgctl;
# static (no cgo), as CoreDNS releases are, so that they run on any Linux
# and in an image with nothing else in it; without the symbol table and
# DWARF (stack traces keep their function names), and with module paths in
# place of this machine's.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/coredns ./cmd/coredns
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/bgctl ./cmd/bgctl

# The container image (Dockerfile) from the binaries, with podman or docker,
# whichever is installed. setcap (Debian's libcap2-bin) gives coredns the
# capability to bind port 53 as the image's unprivileged user, as CoreDNS's
# own image does; it needs root.
CONTAINER ?= $(shell command -v podman || command -v docker)
IMAGE ?= localhost/bluegreen:dev
# The CA bundle to put in the image: Debian's path; Fedora's is
# /etc/pki/tls/certs/ca-bundle.crt.
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt
image: build
	@[ -n "$(CONTAINER)" ] || { echo "make image needs podman or docker"; exit 1; }
	rm -rf bin/image && mkdir bin/image
	cp bin/coredns bin/bgctl bin/image/
	cp $(CA_BUNDLE) bin/image/ca-certificates.crt
	echo 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin' > bin/image/passwd
	echo 'nonroot:x:65532:' > bin/image/group
	setcap cap_net_bind_service=+ep bin/image/coredns
	$(CONTAINER) build -t $(IMAGE) -f Dockerfile bin/image

# Every test, with the race detector. The root module's tests are the
# unit tests of the plugin and of its key schema; test/ is its own module
# with the server-level tests against a real embedded etcd, bgctl's among
# them, and a short run of the torture test (12 steps of a seed of the day,
# without the ops listed as pending in test/torture_test.go). cmd/coredns
# is left to make build, so that the tests compile only what they use.
# The timeouts are generous for a busy 2-core machine; a test stuck
# beyond them fails with every goroutine's stack instead of holding CI.
test:
	$(GO) vet . ./schema ./ctl ./cmd/bgctl
	$(GO) test -race -count=1 -timeout 10m . ./schema ./ctl
	cd test && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 20m ./...

# The seeded torture test (test/torture_test.go) for TORTURE_TIME, seed
# after seed, with every op; make test runs a short run of it. SEED=N
# replays the seed a failure printed; STEPS=N sets the steps per seed, and
# OPS=release,etcd-restart draws only those kinds of op.
TORTURE_TIME ?= 2m
SEED ?= 0
STEPS ?= 0
OPS ?=
TORTURE_TIMEOUT ?= 60m
torture:
	cd test && $(GO) test -race -count=1 -v -run '^TestTorture$$' -timeout $(TORTURE_TIMEOUT) \
		-torture.time $(TORTURE_TIME) -torture.seed $(SEED) -torture.steps $(STEPS) -torture.ops "$(OPS)" .

# Each fuzz target for FUZZTIME, beyond the seed corpora in testdata/fuzz
# that make test runs.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzKeys$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzQuery$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzStateTXT$$' -fuzztime $(FUZZTIME) .

# bluegreen beside hosts, etcd and whoami under dnsperf, flip latency, churn,
# scale and health checks at scale; writes BENCHMARKS.md. Takes about 17
# minutes. dnsperf comes from Debian; as root this installs it.
bench: build
	@command -v dnsperf >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq dnsperf >/dev/null; } || \
		{ echo "make bench needs dnsperf: apt-get install dnsperf"; exit 1; }
	cd test && $(GO) build -o ../bin/bgbench ./cmd/bgbench
	bin/bgbench $(BENCHFLAGS)

# A development etcd and CoreDNS on 127.0.0.1:1053; it prints what to try.
run: build
	cd test && $(GO) build -o ../bin/bgdev ./cmd/bgdev
	bin/bgdev run -coredns bin/coredns -conf example/Corefile

clean:
	rm -rf bin
