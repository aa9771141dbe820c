# keepstate: the two commands of the README are the truth.
#   make demo   build and run the main job
#   make test   every test, vet and staticcheck (what CI runs)

GO          ?= go
BIN         := bin/keepstate
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.7.0
# Tests that build namespaces or replay the whole corpus take a while on 2 cores.
TEST_TIMEOUT ?= 15m

.PHONY: all build demo test vet cross staticcheck fmt-check bpf-check bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/keepstate

# A test build that panics on SIGUSR1, for the lab's panic scenario; it is never
# installed (keepstate lab finds it next to bin/keepstate).
FAULT_BIN := bin/keepstate-faultinject

# As root with iproute2 and iptables: the lab scenarios, real TCP through keepstate
# run in network namespaces (about 2 minutes). Otherwise: the replay demo.
demo: build
	$(GO) build -tags faultinject -o $(FAULT_BIN) ./cmd/keepstate
	@if [ "$$(id -u)" = 0 ] && command -v ip >/dev/null && command -v iptables >/dev/null; then \
	  echo "./$(BIN) lab"; ./$(BIN) lab; \
	else \
	  echo "not root (or no ip/iptables): the replay demo; 'sudo make demo' runs the lab"; ./$(BIN) demo; \
	fi

test: fmt-check vet cross staticcheck bpf-check
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The fast path's eBPF object and Go bindings are committed (go build needs no
# clang): regenerate them with the pinned compiler and require no difference.
bpf-check:
	@if command -v clang-14 >/dev/null && command -v llvm-strip-14 >/dev/null && [ -e /usr/include/bpf/bpf_helpers.h ]; then \
	  $(GO) generate ./dataplane/ebpf && git diff --exit-code --stat -- dataplane/ebpf || \
	  { echo "bpf-check: dataplane/ebpf's generated object differs from its source: run go generate ./dataplane/ebpf and commit"; exit 1; }; \
	else echo "bpf-check: skipped (needs clang-14, llvm-strip-14 and libbpf-dev)"; fi

vet:
	$(GO) vet ./...

# keepstate's offline commands (replay, diff, explain, config) work on any OS; the
# Linux-only parts (NFQUEUE, the lab, peer credentials) sit behind build tags. Vet
# for darwin type-checks every package and test there (about 50 s on a fresh
# cache, nothing on a warm one).
cross:
	GOOS=darwin $(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Short fuzzing session of every fuzz target (FUZZTIME each).
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
